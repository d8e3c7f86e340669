package connectly_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/fakeconnectly"
)

// Every body the fake writes for an answer no documented code names (Config.UncodedBody:
// ERROR_CODE_UNSPECIFIED, "code": "" or no code field) is read by the status, as the reference's
// 4.4 table and README's classification table say: the catch-all code says nothing more. A
// 401 (the key) and a 404 (another business, a wrong path) stop the run, a 400 is refused
// for this recipient only; none of them is retried as transient. The same holds when a rule
// gives the status and the body leaves fields out (Rule.Omit) or carries a null details.
func TestUncodedAnswersReadByTheirStatus(t *testing.T) {
	t.Parallel()
	const business, key, to = "biz-uncoded", "key-0123456789abcdef", "+15550000001"
	tbl := defaultTable(t)
	type call struct {
		businessID, apiKey string
		session            bool
	}
	send := func(t *testing.T, cfg fakeconnectly.Config, c call) (connectly.Decision, *connectly.Error) {
		t.Helper()
		cfg.BusinessID, cfg.APIKey, cfg.RateLimit = business, key, -1
		fake, url := fakeconnectly.StartForTest(t, cfg)
		if c.session {
			if err := fake.OpenWindow(to, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		cl, err := connectly.NewClient(connectly.ClientConfig{BaseURL: url, BusinessID: c.businessID, APIKey: c.apiKey})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if c.session {
			_, err = cl.SendSession(ctx, connectly.SessionMessage{To: to, Content: connectly.SessionContent{Text: "hello"}})
		} else {
			_, err = cl.SendTemplate(ctx, connectly.TemplateMessage{Number: to, TemplateName: "promo", Language: "en"})
		}
		if err == nil {
			t.Fatal("the fake accepted the send, want an error answer")
		}
		ae, _ := err.(*connectly.Error)
		if ae == nil {
			t.Fatalf("error %T %v, want an answer from Connectly", err, err)
		}
		return tbl.Decide(err), ae
	}
	ok := call{businessID: business, apiKey: key}
	rule := func(r fakeconnectly.Rule) []fakeconnectly.Rule {
		r.Numbers = []string{to}
		return []fakeconnectly.Rule{r}
	}
	stop, refused := connectly.ClassStopRun, connectly.ClassPermanent
	for _, tc := range []struct {
		name   string
		cfg    fakeconnectly.Config
		call   call
		status int
		class  connectly.Class
		key    string
	}{
		{"WrongKey", fakeconnectly.Config{}, call{businessID: business, apiKey: "key-wrong-0123456789"}, 401, stop, "ERROR_TYPE_AUTHENTICATION"},
		{"WrongBusiness", fakeconnectly.Config{}, call{businessID: "another-business", apiKey: key}, 404, stop, "HTTP_404"},
		{"Status401", fakeconnectly.Config{Rules: rule(fakeconnectly.Rule{Status: 401})}, ok, 401, stop, "ERROR_TYPE_AUTHENTICATION"},
		{"Status401UnspecifiedType", fakeconnectly.Config{Rules: rule(fakeconnectly.Rule{Status: 401, Type: "ERROR_TYPE_UNSPECIFIED"})}, ok, 401, stop, "HTTP_401"},
		{"Status401NoTypeNoCode", fakeconnectly.Config{Rules: rule(fakeconnectly.Rule{Status: 401, Omit: []string{"type", "code"}})}, ok, 401, stop, "HTTP_401"},
		{"Status404", fakeconnectly.Config{Rules: rule(fakeconnectly.Rule{Status: 404})}, ok, 404, stop, "HTTP_404"},
		{"Status404DetailsNull", fakeconnectly.Config{Rules: rule(fakeconnectly.Rule{Status: 404, Details: json.RawMessage("null")})}, ok, 404, stop, "HTTP_404"},
		{"Status400", fakeconnectly.Config{Rules: rule(fakeconnectly.Rule{Status: 400})}, ok, 400, refused, "ERROR_TYPE_INVALID_REQUEST"},
		{"Status400UnspecifiedType", fakeconnectly.Config{Rules: rule(fakeconnectly.Rule{Status: 400, Type: "ERROR_TYPE_UNSPECIFIED"})}, ok, 400, refused, "HTTP_400"},
		{"Status400CodeOnly", fakeconnectly.Config{Rules: rule(fakeconnectly.Rule{Status: 400, Omit: []string{"type", "message", "userTitle", "userMessage", "cntTraceId", "details"}})}, ok, 400, refused, "HTTP_400"},
		{"UnspecifiedAt400", fakeconnectly.Config{Rules: rule(fakeconnectly.Rule{Code: "ERROR_CODE_UNSPECIFIED", Status: 400})}, ok, 400, refused, "HTTP_400"},
		{"UnspecifiedAt401", fakeconnectly.Config{Rules: rule(fakeconnectly.Rule{Code: "ERROR_CODE_UNSPECIFIED", Status: 401})}, ok, 401, stop, "HTTP_401"},
		{"UnspecifiedAt404", fakeconnectly.Config{Rules: rule(fakeconnectly.Rule{Code: "ERROR_CODE_UNSPECIFIED", Status: 404})}, ok, 404, stop, "HTTP_404"},
		{"SessionUncoded400", fakeconnectly.Config{Rules: rule(fakeconnectly.Rule{Kind: fakeconnectly.KindSession, Status: 400, Type: "ERROR_TYPE_UNSPECIFIED"})},
			call{businessID: business, apiKey: key, session: true}, 400, refused, "HTTP_400"},
	} {
		for _, form := range []string{fakeconnectly.UncodedUnspecified, fakeconnectly.UncodedEmpty, fakeconnectly.UncodedAbsent} {
			t.Run(tc.name+"/"+form, func(t *testing.T) {
				t.Parallel()
				cfg := tc.cfg
				cfg.UncodedBody = form
				d, ae := send(t, cfg, tc.call)
				if ae.StatusCode != tc.status {
					t.Fatalf("answer %d %+v, want %d", ae.StatusCode, ae.ErrorBody, tc.status)
				}
				if d.Class != tc.class || d.Outcome != connectly.OutcomeRefused || d.Key != tc.key {
					t.Errorf("body %+v read as %s/%s under %q, want %s/refused under %q", ae.ErrorBody, d.Class, d.Outcome, d.Key, tc.class, tc.key)
				}
			})
		}
	}
}

// A 429 and a 5xx read the same whatever their body leaves out: the 429 is a throttle (not
// taken), a 5xx may have followed a message that went out (maybe sent).
func TestThrottleAndServerErrorsWithPartialBodies(t *testing.T) {
	t.Parallel()
	const business, key, to = "biz-partial", "key-0123456789abcdef", "+15550000001"
	tbl := defaultTable(t)
	all := []string{"message", "type", "code", "userTitle", "userMessage", "cntTraceId", "details"}
	for _, tc := range []struct {
		name    string
		rule    fakeconnectly.Rule
		class   connectly.Class
		outcome connectly.Outcome
	}{
		{"429NoFields", fakeconnectly.Rule{Status: 429, Omit: all}, connectly.ClassThrottle, connectly.OutcomeNotTaken},
		{"429DetailsNull", fakeconnectly.Rule{Status: 429, Details: json.RawMessage("null")}, connectly.ClassThrottle, connectly.OutcomeNotTaken},
		{"500NoCode", fakeconnectly.Rule{Status: 500, Omit: []string{"code"}}, connectly.ClassTransient, connectly.OutcomeMaybeSent},
		{"500NoFields", fakeconnectly.Rule{Status: 500, Omit: all}, connectly.ClassTransient, connectly.OutcomeMaybeSent},
		{"503DetailsNull", fakeconnectly.Rule{Status: 503, Details: json.RawMessage("null")}, connectly.ClassTransient, connectly.OutcomeMaybeSent},
	} {
		for _, form := range []string{fakeconnectly.UncodedUnspecified, fakeconnectly.UncodedEmpty, fakeconnectly.UncodedAbsent} {
			t.Run(tc.name+"/"+form, func(t *testing.T) {
				t.Parallel()
				rule := tc.rule
				rule.Numbers = []string{to}
				_, url := fakeconnectly.StartForTest(t, fakeconnectly.Config{BusinessID: business, APIKey: key, RateLimit: -1,
					UncodedBody: form, Rules: []fakeconnectly.Rule{rule}})
				cl, err := connectly.NewClient(connectly.ClientConfig{BaseURL: url, BusinessID: business, APIKey: key})
				if err != nil {
					t.Fatal(err)
				}
				_, err = cl.SendTemplate(context.Background(), connectly.TemplateMessage{Number: to, TemplateName: "promo", Language: "en"})
				if d := tbl.Decide(err); d.Class != tc.class || d.Outcome != tc.outcome {
					t.Errorf("%v read as %s/%s (%q), want %s/%s", err, d.Class, d.Outcome, d.Key, tc.class, tc.outcome)
				}
			})
		}
	}
}
