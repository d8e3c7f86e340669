package fakeconnectly

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// statusesOf returns the statusUpdate.status of the delivery_status calls about number, in
// the order they arrived, and checks that their timestamps never go back.
func statusesOf(t *testing.T, calls []wireCall, number string) []string {
	t.Helper()
	var out []string
	last := int64(0)
	for _, c := range eventsFor(calls, number) {
		su := c.body["statusUpdate"].(map[string]any)
		out = append(out, su["status"].(string))
		ts, err := strconv.ParseInt(c.body["timestamp"].(string), 10, 64)
		if err != nil || ts < last {
			t.Errorf("%s: timestamp %v after %d", number, c.body["timestamp"], last)
		}
		last = ts
	}
	return out
}

// TestReference5_1StatusSequences: sent → delivered → read is the typical order only (5.1),
// and a failed call may never be retried (5.3). Fate.Sequence sends any list of statuses,
// in that order, and DropPercent loses events before any call.
func TestReference5_1StatusSequences(t *testing.T) {
	t.Parallel()
	const failedOnly, skipsDelivered, backwards, twice, typical = "+15550000901", "+15550000902", "+15550000903", "+15550000904", "+15550000905"
	sink := &wireSink{}
	fates := `[
		{"numbers":["` + failedOnly + `"],"sequence":["delivery_failed"],"code":"ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT"},
		{"numbers":["` + skipsDelivered + `"],"sequence":["sent","read"]},
		{"numbers":["` + backwards + `"],"sequence":["delivered","sent"]},
		{"numbers":["` + twice + `"],"status":"delivered","sequence":["sent","sent","delivered","read"]}]`
	// One call at a time and no delay: the calls arrive in the order they are planned.
	s, base := newFake(t, Config{RateLimit: -1, Webhooks: WebhookConfig{URL: startSink(t, sink), Secret: "k", Seed: 1, Concurrency: 1,
		Replies: []Reply{{Numbers: []string{skipsDelivered}, Text: "hi"}}}})
	t.Cleanup(func() { s.Close() })
	if a := postTo(t, base+"/_fake/fates", fates); a.status != 200 {
		t.Fatalf("fates: %d %s", a.status, a.body)
	}
	numbers := []string{failedOnly, skipsDelivered, backwards, twice, typical}
	for _, n := range numbers {
		if a := sendRaw(t, base, n); a.status != 200 {
			t.Fatalf("send %s: %d %s", n, a.status, a.body)
		}
	}
	settled(t, s)
	calls := sink.snapshot()
	want := map[string][]string{
		failedOnly:     {HookDeliveryFailed},
		skipsDelivered: {HookSent, HookRead},
		backwards:      {HookDelivered, HookSent},
		twice:          {HookSent, HookSent, HookDelivered, HookRead},
		typical:        {HookSent, HookDelivered, HookRead},
	}
	for _, n := range numbers {
		if got := statusesOf(t, calls, n); !slices.Equal(got, want[n]) {
			t.Errorf("%s: statuses %v, want %v", n, got, want[n])
		}
	}
	if e, _ := failedError(t, calls, failedOnly); e["code"] != "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT" {
		t.Errorf("failure error %v", e)
	}
	// The reader of a sequence with a read replies after it.
	if in := inboundCalls(calls); len(in) != 1 || party(in[0].body, "sender")["id"] != skipsDelivered {
		t.Errorf("inbound calls %v, want one reply from %s", in, skipsDelivered)
	}
	planned := map[string]string{}
	for _, o := range s.WebhookOutcomes() {
		planned[o.Number] = o.Planned
	}
	if wantPlanned := map[string]string{failedOnly: HookDeliveryFailed, skipsDelivered: HookRead, backwards: HookDelivered,
		twice: HookDelivered, typical: HookRead}; fmt.Sprint(planned) != fmt.Sprint(wantPlanned) {
		t.Errorf("planned %v, want %v", planned, wantPlanned)
	}

	for _, bad := range []string{
		`[{"sequence":["sent","bounced"]}]`,
		`[{"status":"read","sequence":["sent","delivered"]}]`,
		`[{"sequence":["read"],"type":"ERROR_TYPE_UNSPECIFIED"}]`,
		`[{}]`,
	} {
		if a := postTo(t, base+"/_fake/fates", bad); a.status != 400 {
			t.Errorf("fates %s: %d %s, want 400", bad, a.status, a.body)
		}
	}
}

// TestReference5_3DroppedEvents: DropPercent loses delivery_status events on Connectly's side:
// the receiver never sees them, and the rest come as usual.
func TestReference5_3DroppedEvents(t *testing.T) {
	t.Parallel()
	for _, pct := range []float64{0, 40, 100} {
		t.Run(fmt.Sprint(pct), func(t *testing.T) {
			t.Parallel()
			sink := &wireSink{}
			cfg, err := ParseConfig(strings.NewReader(fmt.Sprintf(`{"rateLimit":-1,"webhooks":{"dropPercent":%v,"seed":7}}`, pct)))
			if err != nil || cfg.Webhooks.DropPercent != pct {
				t.Fatalf("ParseConfig: %+v, %v", cfg, err)
			}
			cfg.Webhooks.URL, cfg.Webhooks.Secret = startSink(t, sink), "k"
			s, base := newFake(t, cfg)
			t.Cleanup(func() { s.Close() })
			const messages = 100
			for i := range messages {
				if a := sendRaw(t, base, fmt.Sprintf("+1555000%04d", i)); a.status != 200 {
					t.Fatalf("send: %d", a.status)
				}
			}
			st := settled(t, s)
			got := len(statusEvents(sink.snapshot())[HookSent]) + len(statusEvents(sink.snapshot())[HookDelivered]) +
				len(statusEvents(sink.snapshot())[HookRead])
			if got+st.Dropped != 3*messages || st.Delivered != got || st.Events != got {
				t.Errorf("%d calls received, stats %+v; want %d events in all", got, st, 3*messages)
			}
			switch pct {
			case 0:
				if st.Dropped != 0 {
					t.Errorf("dropped %d with 0%%", st.Dropped)
				}
			case 100:
				if got != 0 {
					t.Errorf("%d calls with 100%% dropped", got)
				}
			default:
				if st.Dropped < 80 || st.Dropped > 160 {
					t.Errorf("dropped %d of %d, want about 40%%", st.Dropped, 3*messages)
				}
			}
		})
	}
	if _, err := New(Config{BusinessID: "b", APIKey: "k", Webhooks: WebhookConfig{DropPercent: 101}}); err == nil {
		t.Error("New took DropPercent 101")
	}
}
