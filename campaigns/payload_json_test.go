package campaigns

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"

	"github.com/heraldmsg/herald/internal/connectly"
)

func checkEncodeSend(t *testing.T, p SendPayload) {
	t.Helper()
	want, err := json.Marshal(p)
	if err != nil {
		return // json.Marshal refuses it (NaN rate): nothing to match
	}
	if got := EncodeSend(p); !bytes.Equal(got, want) {
		t.Fatalf("EncodeSend(%#v)\n got %s\nwant %s", p, got, want)
	}
}

// TestEncodeSendMatchesMarshal compares EncodeSend with json.Marshal on payloads with every
// field empty and set, and strings that need escaping.
func TestEncodeSendMatchesMarshal(t *testing.T) {
	t.Parallel()
	full := SendPayload{Run: "nightly-20261124T020000Z-a1b2c3", To: "+5511987654321", Bucket: 17, Row: 123456,
		Campaign: "nightly", Template: "order_update", Language: "pt_BR", Sender: "+14155550100",
		Params:   []connectly.Parameter{{Name: "body_1", Value: "Ana"}, {Name: "body_2", Value: "R$ 10,00"}},
		Delivery: "at-most-once", Rate: 12.5, Category: "utility", SendHours: "09:00-20:00", Zone: "America/Sao_Paulo", Expires: 1795000000}
	checkEncodeSend(t, SendPayload{})
	checkEncodeSend(t, full)
	confirmation := full
	confirmation.ConfirmsOptOut = true
	checkEncodeSend(t, confirmation)
	session := full
	session.Kind, session.Session = KindSession, json.RawMessage(`{ "text" : "Olá <b>&</b>",
	"list": {"button": "x\u2028"} }`)
	checkEncodeSend(t, session)
	for _, s := range []string{`a"b\c`, "tab\tnew\nline\r\b\f", "\x00\x01\x1f\x7f", "<b>&amp;</b>", "ção 日本 🎉",
		"\u2028\u2029", "bad \xff\xfe utf8", "\xe2\x80", "", "x\u00a0y"} {
		p := full
		p.Params = []connectly.Parameter{{Name: s, Value: s}}
		p.Campaign, p.Zone = s, s
		checkEncodeSend(t, p)
	}
	for _, r := range []float64{0.5, 1, 80, 1e-7, 1e21, 123456789.125, -3} {
		p := full
		p.Rate = r
		checkEncodeSend(t, p)
	}
}

// TestEncodeSendAllocatesOnce: an expansion encodes one payload per recipient, into a buffer
// sized once (SendSize), however many of the fields are set and however long the numbers.
func TestEncodeSendAllocatesOnce(t *testing.T) {
	full := SendPayload{Run: "nightly-20261124T020000Z-a1b2c3", To: "+5511987654321", Bucket: math.MaxInt, Row: math.MinInt,
		Campaign: "nightly", Template: "order_update", Language: "pt_BR", Sender: "+14155550100",
		Params:   []connectly.Parameter{{Name: "body_1", Value: "Ana"}, {Name: "body_2", Value: "R$ 10,00"}},
		Delivery: "at-least-once", Rate: -123456789.123456789, Category: "authentication", SendHours: "mon-fri 09:00-20:00",
		Zone: "America/Sao_Paulo", Expires: math.MinInt64, ConfirmsOptOut: true}
	if n := testing.AllocsPerRun(20, func() { EncodeSend(full) }); n != 1 {
		t.Errorf("EncodeSend allocated %v times, want 1", n)
	}
	// Session messages and reply columns take allocations of their own (json.Marshal, the
	// sorted keys), but still fit the buffer.
	full.Kind, full.Session = KindSession, json.RawMessage(`{"text":"Hello Ana, your order has shipped."}`)
	full.ReplyCols = map[string]string{"city": "Recife", "plan": "gold"}
	for _, p := range []SendPayload{{}, full} {
		if got := EncodeSend(p); len(got) > SendSize(&p) {
			t.Errorf("EncodeSend wrote %d bytes, SendSize says %d: %s", len(got), SendSize(&p), got)
		}
	}
}

// FuzzEncodeSend holds EncodeSend to json.Marshal on arbitrary strings and numbers.
func FuzzEncodeSend(f *testing.F) {
	f.Add("r", "+14155550100", 3, 9, "body_1", "<x>&\"\\\n\u2028\xff", 1.5, int64(0))
	f.Fuzz(func(t *testing.T, run, to string, bucket, row int, name, value string, rate float64, exp int64) {
		checkEncodeSend(t, SendPayload{Run: run, To: to, Bucket: bucket, Row: row, Campaign: value, Template: name,
			Language: value, Sender: to, Params: []connectly.Parameter{{Name: name, Value: value}}, Delivery: run,
			Rate: rate, Category: name, SendHours: value, Zone: name, Expires: exp})
	})
}
