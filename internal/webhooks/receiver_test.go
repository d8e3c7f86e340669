package webhooks

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/metrics"
	"github.com/heraldmsg/herald/internal/testredis"
	"github.com/heraldmsg/herald/internal/ulid"
)

const testSecret = "whsec-test-0123456789"

// testNow is the receiver's clock in tests.
var testNow = time.UnixMilli(1_767_225_600_000) // 2026-01-01T00:00:00Z

type testBundle struct {
	mr  *miniredis.Miniredis
	rdb *redis.Client
	l   *ledger.Ledger
	rc  *Receiver
	now time.Time
}

func setup(tb testing.TB, cfg Config) *testBundle {
	tb.Helper()
	mr := miniredis.RunT(tb)
	return setupOn(tb, mr, &redis.Options{Addr: mr.Addr()}, cfg)
}

// setupOutage is setup with the client dialing through an Outage, for a test of Redis going
// down (Outage.Cut): closing the miniredis would free its port, which another test process's
// server may take before the client's next command.
func setupOutage(tb testing.TB, cfg Config) (*testBundle, *testredis.Outage) {
	tb.Helper()
	mr := miniredis.RunT(tb)
	o := testredis.NewOutage(tb, mr.Addr())
	return setupOn(tb, mr, &redis.Options{Dialer: o.Dial}, cfg), o
}

// setupOn is setup on mr, with a client of opts.
func setupOn(tb testing.TB, mr *miniredis.Miniredis, opts *redis.Options, cfg Config) *testBundle {
	tb.Helper()
	rdb := redis.NewClient(opts)
	tb.Cleanup(func() { rdb.Close() })
	b := &testBundle{mr: mr, rdb: rdb, now: testNow}
	if cfg.Secrets == nil {
		cfg.Secrets = []string{testSecret}
	}
	cfg.Now = func() time.Time { return b.now }
	rc, err := New(cfg, Deps{Redis: rdb, Logger: zerolog.Nop()})
	if err != nil {
		tb.Fatal(err)
	}
	b.rc = rc
	b.l = ledger.New(rdb, cfg.Now)
	return b
}

// seedAccepted creates run runID with the given recipients, all accepted, recipient i with
// message id ids[i]. It returns each recipient's bucket.
func seedAccepted(tb testing.TB, b *testBundle, runID string, rcpts, ids []string) map[string]int {
	tb.Helper()
	ctx := context.Background()
	n := ledger.BucketsFor(len(rcpts))
	if err := b.l.CreateRun(ctx, ledger.Run{ID: runID, Campaign: "spring", Buckets: n}); err != nil {
		tb.Fatal(err)
	}
	var es []ledger.PlanEntry
	buckets := map[string]int{}
	for i, r := range rcpts {
		es = append(es, ledger.PlanEntry{Recipient: r, Bucket: ledger.BucketOf(r, n), Row: i + 1})
		buckets[r] = ledger.BucketOf(r, n)
	}
	if _, err := b.l.PlanQueued(ctx, ledger.Batch{Run: runID, From: 0, To: len(es), Entries: es}); err != nil {
		tb.Fatal(err)
	}
	if err := b.l.MarkQueuedAt(ctx, runID, 0, len(es), 0); err != nil {
		tb.Fatal(err)
	}
	for i, e := range es {
		if ids == nil {
			continue
		}
		if _, err := b.l.Claim(ctx, ledger.Address{Run: runID, Bucket: e.Bucket, Recipient: e.Recipient}, ledger.AtMostOnce); err != nil {
			tb.Fatal(err)
		}
		if _, err := b.l.Finish(ctx, ledger.Address{Run: runID, Bucket: e.Bucket, Recipient: e.Recipient}, ledger.Outcome{State: ledger.Accepted, MessageID: ids[i]}); err != nil {
			tb.Fatal(err)
		}
	}
	return buckets
}

// statusBody builds a documented delivery_status body.
func statusBody(runID, to string, bucket int, id, status string, ts time.Time) []byte {
	m := map[string]any{
		"topic":        "delivery_status",
		"timestamp":    fmt.Sprint(ts.Unix()),
		"sender":       map[string]any{"id": "+14155550100", "channelType": "whatsapp", "name": "herald"},
		"recipient":    map[string]any{"id": to, "channelType": "whatsapp", "name": nil},
		"statusUpdate": map[string]any{"id": id, "status": status, "error": nil},
		"metadata":     map[string]any{"campaign_name": "spring"},
		"callbackData": ledger.Address{Run: runID, Recipient: to, Bucket: bucket},
	}
	if status == StatusDeliveryFailed {
		m["statusUpdate"] = map[string]any{"id": id, "status": status, "error": map[string]any{
			"message": "no", "type": "ERROR_TYPE_INVALID_REQUEST", "code": "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT",
			"userTitle": "", "userMessage": "", "cntTraceId": "1", "details": map[string]any{}}}
	}
	b, _ := json.Marshal(m)
	return b
}

// post sends body to the receiver, signed with secret unless secret is "".
func post(tb testing.TB, b *testBundle, body []byte, secret string, mutate ...func(*http.Request)) *httptest.ResponseRecorder {
	tb.Helper()
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	if secret != "" {
		req.Header.Set("x-connectly-hmac-sha256", Sign(body, secret))
	}
	for _, m := range mutate {
		m(req)
	}
	w := httptest.NewRecorder()
	b.rc.ServeHTTP(w, req)
	return w
}

// snapshot returns every key and value in Redis, to prove a request changed nothing.
func snapshot(tb testing.TB, b *testBundle) string {
	tb.Helper()
	return b.mr.Dump()
}

// ulidAt returns a ULID-shaped message id created at t.
func ulidAt(t time.Time, n int) string {
	const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	ms := uint64(t.UnixMilli())
	var b [26]byte
	for i := 9; i >= 0; i-- {
		b[i] = alphabet[ms&31]
		ms >>= 5
	}
	for i := 25; i >= 10; i-- {
		b[i] = alphabet[n&31]
		n >>= 5
	}
	return string(b[:])
}

func entryState(tb testing.TB, b *testBundle, runID, rcpt string, bucket int) ledger.Entry {
	tb.Helper()
	e, ok, err := b.l.Entry(context.Background(), ledger.Address{Run: runID, Bucket: bucket, Recipient: rcpt})
	if err != nil || !ok {
		tb.Fatalf("entry %s: %v %v", rcpt, ok, err)
	}
	return e
}

func TestReceiverRefusals(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{MaxBody: 4096})
	buckets := seedAccepted(t, b, "run-1", []string{"+15550000001"}, []string{"01JGZ0000000000000000000001"})
	body := statusBody("run-1", "+15550000001", buckets["+15550000001"], "01JGZ0000000000000000000001", StatusRead, testNow)
	before := snapshot(t, b)

	for _, tc := range []struct {
		name   string
		body   []byte
		secret string
		mutate func(*http.Request)
		want   int
	}{
		{"MissingSignature", body, "", nil, http.StatusUnauthorized},
		{"WrongSecret", body, "another-secret", nil, http.StatusUnauthorized},
		{"SignatureOfAnotherBody", body, "", func(r *http.Request) {
			r.Header.Set(SignatureHeader, Sign([]byte("{}"), testSecret))
		}, http.StatusUnauthorized},
		{"SignatureNotBase64", body, "", func(r *http.Request) { r.Header.Set(SignatureHeader, "not base64!") }, http.StatusUnauthorized},
		{"SignatureTruncated", body, "", func(r *http.Request) { r.Header.Set(SignatureHeader, Sign(body, testSecret)[:20]) }, http.StatusUnauthorized},
		{"SignatureHexNotBase64", body, "", func(r *http.Request) {
			r.Header.Set(SignatureHeader, fmt.Sprintf("%x", []byte(Sign(body, testSecret))))
		}, http.StatusUnauthorized},
		{"OversizedWithLength", bytes.Repeat([]byte("x"), 4097), testSecret, nil, http.StatusRequestEntityTooLarge},
		{"OversizedChunked", bytes.Repeat([]byte("x"), 5000), testSecret, func(r *http.Request) { r.ContentLength = -1 }, http.StatusRequestEntityTooLarge},
		{"NotJSON", []byte("hello"), testSecret, nil, http.StatusBadRequest},
		{"WrongFieldType", []byte(`{"statusUpdate": {"id": {"x": 1}}}`), testSecret, nil, http.StatusBadRequest},
		{"HTMLContentType", body, testSecret, func(r *http.Request) { r.Header.Set("Content-Type", "text/html") }, http.StatusUnsupportedMediaType},
		{"Get", body, testSecret, func(r *http.Request) { r.Method = http.MethodGet }, http.StatusMethodNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mut []func(*http.Request)
			if tc.mutate != nil {
				mut = append(mut, tc.mutate)
			}
			if w := post(t, b, tc.body, tc.secret, mut...); w.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.want, w.Body)
			}
			if after := snapshot(t, b); after != before {
				t.Fatalf("a refused request changed Redis:\n%s\nwas\n%s", after, before)
			}
		})
	}
	if e := entryState(t, b, "run-1", "+15550000001", buckets["+15550000001"]); e.State != ledger.Accepted {
		t.Fatalf("entry %+v", e)
	}
	// The same body, signed, is applied; application/json is accepted too.
	if w := post(t, b, body, testSecret, func(r *http.Request) { r.Header.Set("Content-Type", "application/json") }); w.Code != http.StatusOK {
		t.Fatalf("signed: %d %s", w.Code, w.Body)
	}
	if e := entryState(t, b, "run-1", "+15550000001", buckets["+15550000001"]); e.State != ledger.Read {
		t.Fatalf("entry %+v", e)
	}
}

func TestReceiverDeliveryEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("DuplicatesAndReorderingEndAtTheHighestState", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		rcpts := []string{"+15550000001", "+15550000002", "+15550000003"}
		ids := []string{ulidAt(testNow.Add(-3*time.Second), 1), ulidAt(testNow.Add(-3*time.Second), 2), ulidAt(testNow.Add(-3*time.Second), 3)}
		buckets := seedAccepted(t, b, "run-2", rcpts, ids)
		seqs := [][]string{
			{StatusRead, StatusSent, StatusDelivered, StatusRead, StatusDelivered},
			{StatusDelivered, StatusDelivered, StatusSent},
			{StatusDeliveryFailed, StatusSent, StatusDeliveryFailed},
		}
		for i, seq := range seqs {
			for _, st := range seq {
				if w := post(t, b, statusBody("run-2", rcpts[i], buckets[rcpts[i]], ids[i], st, testNow), testSecret); w.Code != http.StatusOK {
					t.Fatalf("%s: %d %s", st, w.Code, w.Body)
				}
			}
		}
		for i, want := range []ledger.State{ledger.Read, ledger.Delivered, ledger.Failed} {
			if e := entryState(t, b, "run-2", rcpts[i], buckets[rcpts[i]]); e.State != want {
				t.Errorf("%s: %+v, want %s", rcpts[i], e, want)
			}
		}
		e := entryState(t, b, "run-2", rcpts[2], buckets[rcpts[2]])
		if e.Code != "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT" {
			t.Fatalf("failure code %q", e.Code)
		}
		sup, err := b.l.Suppressed(ctx, rcpts)
		if err != nil || !sup[2] || sup[0] {
			t.Fatalf("suppressed %v %v", sup, err)
		}
		d, err := b.l.DeliveryStats(ctx, "run-2")
		if err != nil {
			t.Fatal(err)
		}
		if d.Delivered != 2 || d.Read != 1 || d.DeliveryFailed != 1 || d.FailedByClass["permanent"] != 1 || d.TimeToDeliver.Samples != 2 {
			t.Fatalf("stats %+v", d)
		}
		// The event time is the timestamp's second: 3 s after the send.
		if p := d.TimeToDeliver.P50; p < 2*time.Second || p > 5*time.Second {
			t.Fatalf("p50 %s", p)
		}
		if v, err := b.l.Verify(ctx, "run-2"); err != nil || len(v.Mismatches) > 0 {
			t.Fatalf("verify %+v %v", v, err)
		}
	})

	t.Run("EarlyEventIsParkedThenApplied", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{ParkFor: time.Minute})
		rcpts := []string{"+15550000001", "+15550000002"}
		buckets := seedAccepted(t, b, "run-3", rcpts, nil)
		for _, r := range rcpts {
			if _, err := b.l.Claim(ctx, ledger.Address{Run: "run-3", Bucket: buckets[r], Recipient: r}, ledger.AtMostOnce); err != nil {
				t.Fatal(err)
			}
		}
		id := ulidAt(testNow, 7)
		for _, st := range []string{StatusSent, StatusDelivered, StatusSent} {
			if w := post(t, b, statusBody("run-3", rcpts[0], buckets[rcpts[0]], id, st, testNow), testSecret); w.Code != http.StatusOK {
				t.Fatal(w.Code)
			}
		}
		post(t, b, statusBody("run-3", rcpts[1], buckets[rcpts[1]], ulidAt(testNow, 8), StatusSent, testNow), testSecret)
		if n, _ := b.rc.Parked(ctx); n != 3 {
			t.Fatalf("%d parked, want 3 (the duplicate sent collapses)", n)
		}
		if done, left, err := b.rc.RetryParked(ctx); err != nil || done != 0 || left != 3 {
			t.Fatalf("RetryParked before the send is recorded = %d, %d, %v", done, left, err)
		}
		if _, err := b.l.Finish(ctx, ledger.Address{Run: "run-3", Bucket: buckets[rcpts[0]], Recipient: rcpts[0]}, ledger.Outcome{State: ledger.Accepted, MessageID: id}); err != nil {
			t.Fatal(err)
		}
		if done, left, err := b.rc.RetryParked(ctx); err != nil || done != 2 || left != 1 {
			t.Fatalf("RetryParked = %d, %d, %v", done, left, err)
		}
		if e := entryState(t, b, "run-3", rcpts[0], buckets[rcpts[0]]); e.State != ledger.Delivered || e.MessageID != id {
			t.Fatalf("entry %+v", e)
		}
		// The other send is never recorded: its claim is still unsettled, so its event outlives
		// ParkFor, and expires after ledger.ParkedMaxAge.
		b.now = b.now.Add(2 * time.Minute)
		if done, left, err := b.rc.RetryParked(ctx); err != nil || done != 0 || left != 1 {
			t.Fatalf("RetryParked after ParkFor, the entry still submitting = %d, %d, %v", done, left, err)
		}
		b.now = b.now.Add(ledger.ParkedMaxAge)
		if done, left, err := b.rc.RetryParked(ctx); err != nil || done != 1 || left != 0 {
			t.Fatalf("RetryParked after ParkedMaxAge = %d, %d, %v", done, left, err)
		}
	})

	t.Run("SettlesUnknown", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		r := "+15550000009"
		buckets := seedAccepted(t, b, "run-4", []string{r}, nil)
		for range 2 {
			if _, err := b.l.Claim(ctx, ledger.Address{Run: "run-4", Bucket: buckets[r], Recipient: r}, ledger.AtMostOnce); err != nil {
				t.Fatal(err)
			}
		}
		if e := entryState(t, b, "run-4", r, buckets[r]); e.State != ledger.Unknown {
			t.Fatalf("setup: %+v", e)
		}
		post(t, b, statusBody("run-4", r, buckets[r], ulidAt(testNow, 1), StatusDelivered, testNow), testSecret)
		if e := entryState(t, b, "run-4", r, buckets[r]); e.State != ledger.Delivered {
			t.Fatalf("entry %+v", e)
		}
	})

	t.Run("WithoutCallbackDataByCampaignAndMessageID", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		rcpts := []string{"+15550000001", "+15550000002"}
		ids := []string{ulidAt(testNow, 1), ulidAt(testNow, 2)}
		buckets := seedAccepted(t, b, "run-5", rcpts, ids)
		// The error-page shape: metadata null at the top, the campaign in statusUpdate.metadata.
		body := func(to, id string) []byte {
			return []byte(fmt.Sprintf(`{"topic":"delivery_status","timestamp":"%d","sender":{"id":"+14155550100","channelType":"whatsapp","name":null},
"recipient":{"id":%q,"channelType":"whatsapp","name":null},"metadata":null,
"statusUpdate":{"id":%q,"status":"read","error":null,"metadata":{"campaignName":"spring"}}}`, testNow.Unix(), to, id))
		}
		post(t, b, body(rcpts[0], ids[0]), testSecret)
		post(t, b, body(rcpts[1], ids[0]), testSecret) // the id of another person's message: no match
		if e := entryState(t, b, "run-5", rcpts[0], buckets[rcpts[0]]); e.State != ledger.Read {
			t.Fatalf("entry %+v", e)
		}
		if e := entryState(t, b, "run-5", rcpts[1], buckets[rcpts[1]]); e.State != ledger.Accepted {
			t.Fatalf("entry %+v", e)
		}
	})

	t.Run("IrrelevantBodiesAreAcknowledged", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		before := snapshot(t, b)
		for _, body := range []string{`{}`, `{"topic":"topic_unspecified"}`, `{"statusUpdate":{"id":"x","status":"queued"}}`,
			`{"statusUpdate":{"id":"x","status":"read"}}`, `{"statusUpdate":{"id":"x","status":"read"},"callbackData":{"campaign_id":"c-42"}}`} {
			if w := post(t, b, []byte(body), testSecret); w.Code != http.StatusOK {
				t.Fatalf("%s: %d", body, w.Code)
			}
		}
		if after := snapshot(t, b); after != before {
			t.Fatal("an irrelevant event changed Redis")
		}
	})

	t.Run("RedisDownIs503", func(t *testing.T) {
		t.Parallel()
		b, outage := setupOutage(t, Config{})
		outage.Cut()
		if w := post(t, b, statusBody("run", "+15550000001", 0, "x", StatusRead, testNow), testSecret); w.Code != http.StatusServiceUnavailable {
			t.Fatalf("status %d", w.Code)
		}
	})
}

func TestReceiverInbound(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, Config{OptOutWords: []string{"baja", "Parar de receber"}})
	inbound := func(from, text string, button map[string]any, cb *ledger.Address) []byte {
		m := map[string]any{
			"timestamp": fmt.Sprint(testNow.Unix()),
			"sender":    map[string]any{"id": from, "channelType": "whatsapp"},
			"recipient": map[string]any{"id": "+14155550100", "channelType": "whatsapp"},
			"message":   map[string]any{"text": text},
		}
		if button != nil {
			m["buttonResponse"] = button
			m["context"] = map[string]any{"replyToId": "01JGZ0000000000000000000001"}
		}
		if cb != nil {
			m["callbackData"] = cb
		}
		out, _ := json.Marshal(m)
		return out
	}
	// cb is run-6's callbackData for the customer to (each reply carries its sender's own).
	cb := func(to string) *ledger.Address { return &ledger.Address{Run: "run-6", Recipient: to, Bucket: 0} }
	for _, body := range [][]byte{
		inbound("+15550000001", "  stop! ", nil, nil),
		inbound("+15550000002", "Baja", nil, nil),
		inbound("+15550000003", "parar de  RECEBER.", nil, nil),
		inbound("+15550000004", "please stop sending", nil, nil),
		inbound("+15550000005", "", map[string]any{"text": "Yes, please", "payload": "YES"}, cb("+15550000005")),
		inbound("+15550000006", "", map[string]any{"text": "Yes, please", "payload": "YES"}, cb("+15550000006")),
		inbound("+15550000007", "", map[string]any{"text": "Stop promotions", "payload": "UNSUBSCRIBE"}, cb("+15550000007")),
		[]byte(`{"sender":{"id":"US.13491208655302741918","userId":"US.13491208655302741918","phoneNumber":""},"message":{"text":"STOP"}}`),
	} {
		if w := post(t, b, body, testSecret); w.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", body, w.Code, w.Body)
		}
	}
	who := []string{"+15550000001", "+15550000002", "+15550000003", "+15550000004", "+15550000005", "+15550000007", "bsuid:US.13491208655302741918"}
	sup, err := b.l.Suppressed(ctx, who)
	if err != nil {
		t.Fatal(err)
	}
	want := []bool{true, true, true, false, false, true, true}
	for i := range who {
		if sup[i] != want[i] {
			t.Errorf("%s suppressed = %v, want %v", who[i], sup[i], want[i])
		}
	}
	d, err := b.l.DeliveryStats(ctx, "run-6")
	if err != nil {
		t.Fatal(err)
	}
	if d.Replies != 3 || d.ButtonReplies["Yes, please"] != 2 || d.OptOutsReceived != 1 {
		t.Fatalf("stats %+v", d)
	}
}

func TestReceiverSecretRotation(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{Secrets: []string{"new-secret", " old-secret\n"}})
	for _, s := range []string{"new-secret", "old-secret"} {
		if w := post(t, b, []byte(`{}`), s); w.Code != http.StatusOK {
			t.Fatalf("%s: %d", s, w.Code)
		}
	}
	if w := post(t, b, []byte(`{}`), "older-secret"); w.Code != http.StatusUnauthorized {
		t.Fatalf("retired secret: %d", w.Code)
	}
	if _, err := New(Config{Secrets: []string{" "}}, Deps{Redis: b.rdb}); err == nil {
		t.Fatal("New accepted a blank secret")
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	// The two documented examples of reference 5.4, verbatim in shape.
	ok, err := Parse([]byte(`{"topic":"delivery_status","timestamp":"1641513098",
"sender":{"id":"+16044441234","channelType":"whatsapp","name":"connectlyai"},
"recipient":{"id":"+16315555500","channelType":"whatsapp","name":"Customer"},
"statusUpdate":{"id":"01FRRWW2ZAHD9GJ1SWY4VF2GBD","status":"delivered","error":null},
"metadata":{"campaign_name":"<YOUR_CAMPAIGN_NAME>"},"callbackData":{"campaign_id":"c-42"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if ok.Kind != KindStatus || ok.Status != StatusDelivered || ok.MessageID != "01FRRWW2ZAHD9GJ1SWY4VF2GBD" ||
		ok.Campaign != "<YOUR_CAMPAIGN_NAME>" || ok.At.Unix() != 1641513098 || ok.Callback != nil || ok.Customer[0] != "+16315555500" {
		t.Fatalf("success example: %+v", ok)
	}
	if at, valid := ulid.Time(ok.MessageID); !valid || at.Year() != 2022 {
		t.Fatalf("ulid time %s %v", at, valid)
	}
	failed, err := Parse([]byte(`{"topic":"delivery_status","timestamp":"1656352114",
"sender":{"id":"+16044441234","channelType":"whatsapp","name":null},"recipient":{"id":"+16041234123","channelType":"whatsapp","name":null},
"metadata":null,"statusUpdate":{"id":"01G6K4F15SXZTB6T8WJ94PMF4P","status":"delivery_failure",
"error":{"message":"Internal server error","type":"ERROR_TYPE_UNSPECIFIED","code":"ERROR_CODE_UNSPECIFIED","userTitle":"Encountered unexpected error",
"userMessage":"Pass along the connectly trace id 'cnct_trace_id' to the team for more information.","cntTraceId":"6909023413031898817","details":{}},
"metadata":{"campaignName":"campaign_name"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if failed.Status != StatusDeliveryFailed || failed.Campaign != "campaign_name" || failed.Error.Code != "ERROR_CODE_UNSPECIFIED" {
		t.Fatalf("failure example: %+v", failed)
	}
	// callbackData echoed as a string, a numeric timestamp, BSUID customers.
	s, err := Parse([]byte(`{"timestamp":1641513098,"statusUpdate":{"id":"x","status":"READ"},
"recipient":{"id":"US.1349","userId":"US.1349","phoneNumber":"+15550001111"},
"callbackData":"{\"herald_run\":\"r\",\"herald_to\":\"+15550001111\",\"herald_b\":3}"}`))
	if err != nil {
		t.Fatal(err)
	}
	if s.Callback == nil || *s.Callback != (ledger.Address{Run: "r", Recipient: "+15550001111", Bucket: 3}) || s.Status != StatusRead || s.At.IsZero() {
		t.Fatalf("variant: %+v", s)
	}
	if strings.Join(s.Customer, " ") != "+15550001111 bsuid:US.1349" {
		t.Fatalf("customer keys %v", s.Customer)
	}
	for _, bad := range []string{``, `[]`, `"x"`, `{"timestamp":{}}`, `{"message":{"text":[1]}}`} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
	for _, id := range []string{"", "short", "01FRRWW2ZAHD9GJ1SWY4VF2GBU", "81FRRWW2ZAHD9GJ1SWY4VF2GBD"} {
		if _, valid := ulid.Time(id); valid {
			t.Errorf("Time(%q) valid", id)
		}
	}
}

func TestReceiverMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	m := metrics.New().NewWebhooks()
	b.rc.m = m
	rcpt := "+15550000009"
	id := ulidAt(testNow.Add(-10*time.Second), 9)
	buckets := seedAccepted(t, b, "run-m", []string{rcpt}, []string{id})
	// Delivered 3 s before it arrives.
	if w := post(t, b, statusBody("run-m", rcpt, buckets[rcpt], id, StatusDelivered, testNow.Add(-3*time.Second)), testSecret); w.Code != http.StatusOK {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if w := post(t, b, statusBody("run-m", rcpt, buckets[rcpt], id, StatusDelivered, testNow), "wrong"); w.Code != http.StatusUnauthorized {
		t.Fatalf("%d", w.Code)
	}
	if n := testutil.ToFloat64(m.Events.WithLabelValues("status", StatusDelivered, "applied")); n != 1 {
		t.Fatalf("events applied %v, want 1", n)
	}
	if n := testutil.ToFloat64(m.Requests.WithLabelValues("unauthorized")); n != 1 {
		t.Fatalf("unauthorized %v, want 1", n)
	}
	want := `
# HELP herald_webhook_event_lag_seconds Time from a webhook event's timestamp to its arrival at the receiver, by status (the timestamp has one-second precision).
# TYPE herald_webhook_event_lag_seconds histogram
herald_webhook_event_lag_seconds_bucket{status="delivered",le="1"} 0
herald_webhook_event_lag_seconds_bucket{status="delivered",le="2"} 0
herald_webhook_event_lag_seconds_bucket{status="delivered",le="5"} 1
herald_webhook_event_lag_seconds_bucket{status="delivered",le="10"} 1
herald_webhook_event_lag_seconds_bucket{status="delivered",le="30"} 1
herald_webhook_event_lag_seconds_bucket{status="delivered",le="60"} 1
herald_webhook_event_lag_seconds_bucket{status="delivered",le="300"} 1
herald_webhook_event_lag_seconds_bucket{status="delivered",le="900"} 1
herald_webhook_event_lag_seconds_bucket{status="delivered",le="3600"} 1
herald_webhook_event_lag_seconds_bucket{status="delivered",le="+Inf"} 1
herald_webhook_event_lag_seconds_sum{status="delivered"} 3
herald_webhook_event_lag_seconds_count{status="delivered"} 1
`
	if err := testutil.CollectAndCompare(m.Lag, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
}

// TestReceiverReplyWithoutCallback counts a button reply that carries no callbackData in the
// run whose message it answers (context.replyToId), found among the customer's entries of the
// newest runs, and one that names no message in the newest run that sent the customer one.
func TestReceiverReplyWithoutCallback(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, Config{})
	const ana, bo = "+15550000001", "+15550000002"
	seedAccepted(t, b, "run-old", []string{ana, bo}, []string{"mid-old-ana", "mid-old-bo"})
	b.now = testNow.Add(time.Minute)
	seedAccepted(t, b, "run-new", []string{ana}, []string{"mid-new-ana"})
	reply := func(from, replyTo string) []byte {
		m := map[string]any{
			"timestamp":      fmt.Sprint(testNow.Unix()),
			"sender":         map[string]any{"id": from, "channelType": "whatsapp"},
			"recipient":      map[string]any{"id": "+14155550100", "channelType": "whatsapp"},
			"buttonResponse": map[string]any{"text": "Yes", "payload": "YES"},
		}
		if replyTo != "" {
			m["message"] = map[string]any{"id": "in-" + from + replyTo}
			m["context"] = map[string]any{"replyToId": replyTo}
		}
		out, _ := json.Marshal(m)
		return out
	}
	for _, body := range [][]byte{
		reply(ana, "mid-old-ana"), // the older run's message, though a newer one exists
		reply(ana, ""),            // no message named: the newest run that sent to ana
		reply(bo, ""),             // bo is only in the older run
		reply(ana, "mid-unknown"), // a message of no recent run: counted nowhere
	} {
		if w := post(t, b, body, testSecret); w.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", body, w.Code, w.Body)
		}
	}
	for run, want := range map[string]int64{"run-old": 2, "run-new": 1} {
		d, err := b.l.DeliveryStats(ctx, run)
		if err != nil {
			t.Fatal(err)
		}
		if d.Replies != want || d.ButtonReplies["Yes"] != want {
			t.Errorf("%s: %d replies (%v), want %d", run, d.Replies, d.ButtonReplies, want)
		}
	}
}
