package asynqbatch

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestNewTaskEncodesAsWrite: a task whose payload NewTask wrote into its message carries the
// message Write would encode for the same payload, whatever size was guessed (too small, too
// large, across the one-, two- and three-byte lengths) and for an empty payload.
func TestNewTaskEncodesAsWrite(t *testing.T) {
	t.Parallel()
	base := Task{Type: "message:send", ID: "r/0123456789ab", Queue: "herald:marketing", MaxRetry: 28,
		Timeout: 41 * time.Second, Retention: 24 * time.Hour}
	for _, n := range []int{0, 1, 127, 128, 129, 300, 16383, 16384, 20000} {
		payload := []byte(strings.Repeat("p", n))
		for _, guess := range []int{0, 1, 127, 128, 300, 16383, 16384, 20000, n} {
			got := NewTask(base, guess, func(b []byte) []byte { return append(b, payload...) })
			want := base
			want.Payload = payload
			if msg := encodeTaskMessage(want); !bytes.Equal(got.msg, msg) {
				t.Fatalf("payload %d bytes, guessed %d: message\n%x\nwant\n%x", n, guess, got.msg, msg)
			}
			if !bytes.Equal(got.Payload, payload) {
				t.Fatalf("payload %d bytes, guessed %d: Payload holds %d bytes", n, guess, len(got.Payload))
			}
			if typ, p, ok := DecodeTask(got.msg); !ok || typ != base.Type || !bytes.Equal(p, payload) {
				t.Fatalf("payload %d bytes, guessed %d: decoded %q, %d bytes, %v", n, guess, typ, len(p), ok)
			}
		}
	}
}
