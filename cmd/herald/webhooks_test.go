package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/webhooks"
)

func TestWebhooksCommandUsage(t *testing.T) {
	t.Parallel()
	_, env := miniEnv(t)
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		code int
		want string
	}{
		{"NoListen", env, []string{"webhooks"}, exitUsage, "--listen"},
		{"NoSecret", env, []string{"webhooks", "--listen", "127.0.0.1:0"}, exitError, "CONNECTLY_WEBHOOK_SECRET"},
		{"RegisterNoURL", env, []string{"webhooks", "register"}, exitUsage, "--url"},
		{"RegisterBadURL", env, []string{"webhooks", "register", "--url", "ftp://x"}, exitUsage, "http(s)"},
		{"RegisterBadTopic", env, []string{"webhooks", "register", "--url", "https://x.example/h", "--topics", "everything"}, exitUsage, "everything"},
		{"RegisterNoBusiness", env, []string{"webhooks", "register", "--url", "https://x.example/h"}, exitError, "business_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := herald(t, tc.env, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errOut, tc.code, tc.want)
			}
		})
	}
}

func TestWebhooksRegister(t *testing.T) {
	t.Parallel()
	_, base := newFake(t, fakeconnectly.Config{BusinessID: itBusiness, APIKey: itKey})
	env := map[string]string{"CONNECTLY_BASE_URL": base, "CONNECTLY_BUSINESS_ID": itBusiness, "CONNECTLY_API_KEY": itKey}
	for _, step := range []struct {
		url, want string
	}{
		{"https://hooks.example.com/connectly", "created"},
		{"https://hooks.example.com/connectly", "unchanged"},
		{"https://hooks2.example.com/connectly", "updated"},
	} {
		code, out, errOut := herald(t, env, "webhooks", "register", "--url", step.url)
		if code != 0 {
			t.Fatalf("register exited %d: %s", code, errOut)
		}
		for _, topic := range []string{"delivery_status", "messages"} {
			if !strings.Contains(out, topic) || strings.Count(out, step.want) != 2 || !strings.Contains(out, step.url) {
				t.Fatalf("register %s: want both topics %s:\n%s", step.url, step.want, out)
			}
		}
	}
	if code, _, errOut := herald(t, env, "webhooks", "register", "--url", "http://127.0.0.1:1/h", "--topics", "messages"); code != 0 ||
		!strings.Contains(errOut, "plain http") {
		t.Fatalf("plain http: exit %d, %q", code, errOut)
	}
}

// freeAddr returns a loopback address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// webhookSecret is the webhook secret of webhookEnv's environment.
const webhookSecret = "cli-webhook-secret"

// webhookEnv is miniEnv with the webhook secret webhookSecret, and the ledger on its Redis.
func webhookEnv(t *testing.T) (map[string]string, *ledger.Ledger) {
	t.Helper()
	m, env := miniEnv(t)
	env["CONNECTLY_WEBHOOK_SECRET"] = webhookSecret
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { rdb.Close() })
	return env, ledger.New(rdb, nil)
}

// TestWebhooksServeThenRunShow runs `herald webhooks`, posts signed and unsigned events to it,
// stops it with its context, and reads the outcome with `run show`.
func TestWebhooksServeThenRunShow(t *testing.T) {
	t.Parallel()
	env, l := webhookEnv(t)
	ctx := context.Background()
	rcpts := []string{"+14155550101", "+14155550102"}
	if err := l.CreateRun(ctx, ledger.Run{ID: "hooks-1", Campaign: "spring", Buckets: 1}); err != nil {
		t.Fatal(err)
	}
	es := []ledger.PlanEntry{{Recipient: rcpts[0], Row: 1}, {Recipient: rcpts[1], Row: 2}}
	if _, err := l.PlanQueued(ctx, ledger.Batch{Run: "hooks-1", From: 0, To: 2, Entries: es}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.FinishExpansion(ctx, "hooks-1", 2); err != nil {
		t.Fatal(err)
	}
	// Message ids are ULIDs made a second ago: the time to deliver is read from them.
	ids := []string{ulidAt(time.Now().Add(-time.Second)) + "AAAAAAAAAAAAAAAA", ulidAt(time.Now()) + "BBBBBBBBBBBBBBBB"}
	for i, r := range rcpts {
		if _, err := l.Claim(ctx, ledger.Address{Run: "hooks-1", Bucket: 0, Recipient: r}, ledger.AtMostOnce); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Finish(ctx, ledger.Address{Run: "hooks-1", Bucket: 0, Recipient: r}, ledger.Outcome{State: ledger.Accepted, MessageID: ids[i]}); err != nil {
			t.Fatal(err)
		}
	}

	addr := freeAddr(t)
	sctx, stop := context.WithCancel(ctx)
	done := make(chan int, 1)
	var errb bytes.Buffer
	go func() {
		done <- run(sctx, []string{"webhooks", "--listen", addr}, func(k string) string { return env[k] }, &bytes.Buffer{}, &errb)
	}()
	body := func(to, id, status string) []byte {
		return []byte(fmt.Sprintf(`{"topic":"delivery_status","timestamp":"%d","recipient":{"id":%q,"channelType":"whatsapp"},`+
			`"statusUpdate":{"id":%q,"status":%q,"error":null},"metadata":{"campaign_name":"spring"},`+
			`"callbackData":{"herald_run":"hooks-1","herald_to":%q,"herald_b":0}}`, time.Now().Unix(), to, id, status, to))
	}
	postTo := func(b []byte, sig string) int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/", bytes.NewReader(b))
		req.Header.Set("Content-Type", "text/plain; charset=utf-8")
		if sig != "" {
			req.Header.Set(webhooks.SignatureHeader, sig)
		}
		resp, err := testHTTP.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	waitFor(t, 10*time.Second, "the receiver to listen", func() bool { return postTo([]byte("{}"), webhooks.Sign([]byte("{}"), webhookSecret)) == 200 })
	if code := postTo(body(rcpts[0], ids[0], "read"), "bad"); code != http.StatusUnauthorized {
		t.Fatalf("unsigned: %d", code)
	}
	for _, st := range []string{"delivered", "read", "sent"} {
		b := body(rcpts[0], ids[0], st)
		if code := postTo(b, webhooks.Sign(b, webhookSecret)); code != http.StatusOK {
			t.Fatalf("%s: %d", st, code)
		}
	}
	b := body(rcpts[1], ids[1], "delivery_failed")
	if code := postTo(b, webhooks.Sign(b, webhookSecret)); code != http.StatusOK {
		t.Fatal(code)
	}
	stop()
	if code := <-done; code != 0 {
		t.Fatalf("webhooks exited %d: %s", code, errb.String())
	}
	if strings.Contains(errb.String(), webhookSecret) {
		t.Fatal("the receiver logged its secret")
	}

	code, out, errOut := herald(t, env, "run", "show", "hooks-1")
	if code != 0 {
		t.Fatalf("run show: %d %s", code, errOut)
	}
	for _, want := range []string{"2 accepted, 1 sent, 1 delivered, 1 read, 1 failed in delivery", "delivery rate 50.0%", "read rate 100.0%",
		"time to deliver (1 message)", "DELIVERY FAILED:CODE"} {
		if !strings.Contains(out, want) {
			t.Errorf("run show lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = herald(t, env, "run", "show", "--json", "hooks-1")
	if code != 0 || !strings.Contains(out, `"delivery": {`) || !strings.Contains(out, `"read_rate": 1`) {
		t.Fatalf("run show --json: %d\n%s", code, out)
	}
}

// ulidAt returns the 10-character time part of a ULID made at t.
func ulidAt(t time.Time) string {
	const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	ms := uint64(t.UnixMilli())
	var b [10]byte
	for i := 9; i >= 0; i-- {
		b[i] = alphabet[ms&31]
		ms >>= 5
	}
	return string(b[:])
}
