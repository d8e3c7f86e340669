package connectly_test

import (
	"context"
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/internal/fakeconnectly"
)

// How Herald reads the fake Connectly's answers: the client against the fake, each answer
// through the default table. The fake's own tests check the wire against the reference; these
// check Herald's reading of it, so the fake's tests need no word of Herald's classes.
func TestFakeAnswersAsHeraldReadsThem(t *testing.T) {
	t.Parallel()
	const business, key, to = "biz-contract", "key-0123456789abcdef", "+15550000001"
	tbl := defaultTable(t)
	send := func(t *testing.T, cfg fakeconnectly.Config, businessID, apiKey, template string) connectly.Decision {
		t.Helper()
		cfg.BusinessID, cfg.APIKey = business, key
		_, url := fakeconnectly.StartForTest(t, cfg)
		c, err := connectly.NewClient(connectly.ClientConfig{BaseURL: url, BusinessID: businessID, APIKey: apiKey})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.SendTemplate(context.Background(), connectly.TemplateMessage{Number: to, TemplateName: template, Language: "en"})
		if err == nil {
			t.Fatal("the fake accepted the send, want an error answer")
		}
		return tbl.Decide(err)
	}
	for _, tc := range []struct {
		name    string
		rule    fakeconnectly.Rule
		class   connectly.Class
		outcome connectly.Outcome
	}{
		{"PhoneInvalid", fakeconnectly.Rule{Code: "ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID"}, connectly.ClassPermanent, connectly.OutcomeRefused},
		{"OptedOut", fakeconnectly.Rule{Code: "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT"}, connectly.ClassPermanent, connectly.OutcomeRefused},
		{"ReachedLimits", fakeconnectly.Rule{Code: "ERROR_CODE_BUSINESS_REACHED_LIMITS"}, connectly.ClassStopRun, connectly.OutcomeRefused},
		{"Unspecified", fakeconnectly.Rule{Code: "ERROR_CODE_UNSPECIFIED"}, connectly.ClassTransient, connectly.OutcomeMaybeSent},
		{"KeySecretAbsent", fakeconnectly.Rule{Code: "ERROR_CODE_BUSINESS_KEY_SECRET_ABSENT"}, connectly.ClassStopRun, connectly.OutcomeRefused},
		{"TypeAuthentication", fakeconnectly.Rule{Code: fakeconnectly.TypeAuthentication}, connectly.ClassStopRun, connectly.OutcomeRefused},
		{"WindowAt504", fakeconnectly.Rule{Code: "ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW", Status: 504}, connectly.ClassPermanent, connectly.OutcomeRefused},
		{"MetaPermanent", fakeconnectly.Rule{Code: "131049"}, connectly.ClassPermanent, connectly.OutcomeRefused},
		{"PairLimitAt429", fakeconnectly.Rule{Code: "131056", Status: 429}, connectly.ClassThrottle, connectly.OutcomeNotTaken},
		{"MetaPermanentNumeric", fakeconnectly.Rule{Code: "131049", NumericCode: true}, connectly.ClassPermanent, connectly.OutcomeRefused},
		{"PairLimitNumeric", fakeconnectly.Rule{Code: "131056", NumericCode: true}, connectly.ClassThrottle, connectly.OutcomeNotTaken},
		{"Status500", fakeconnectly.Rule{Status: 500}, connectly.ClassTransient, connectly.OutcomeMaybeSent},
		{"Status502", fakeconnectly.Rule{Status: 502}, connectly.ClassTransient, connectly.OutcomeMaybeSent},
		{"Status503", fakeconnectly.Rule{Status: 503}, connectly.ClassTransient, connectly.OutcomeMaybeSent},
		{"Status429", fakeconnectly.Rule{Status: 429}, connectly.ClassThrottle, connectly.OutcomeNotTaken},
		{"Status409", fakeconnectly.Rule{Status: 409}, connectly.ClassStopRun, connectly.OutcomeRefused},
		{"Status401", fakeconnectly.Rule{Status: 401}, connectly.ClassStopRun, connectly.OutcomeRefused},
		{"Status400", fakeconnectly.Rule{Status: 400}, connectly.ClassPermanent, connectly.OutcomeRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rule := tc.rule
			rule.Numbers = []string{to}
			d := send(t, fakeconnectly.Config{Rules: []fakeconnectly.Rule{rule}, RateLimit: -1}, business, key, "promo")
			if d.Class != tc.class || d.Outcome != tc.outcome {
				t.Errorf("read as %s/%s (%q), want %s/%s", d.Class, d.Outcome, d.Key, tc.class, tc.outcome)
			}
		})
	}
	// A wrong key, a wrong business and a template the business lacks fail every send alike:
	// they stop the run. Connectly's own request limit is a throttle.
	for name, d := range map[string]connectly.Decision{
		"WrongKey":        send(t, fakeconnectly.Config{RateLimit: -1}, business, "key-wrong-0123456789", "promo"),
		"WrongBusiness":   send(t, fakeconnectly.Config{RateLimit: -1}, "other-business", key, "promo"),
		"TemplateMissing": send(t, fakeconnectly.Config{RateLimit: -1, Templates: []fakeconnectly.Template{{Name: "order_update", Language: "en"}}}, business, key, "promo"),
	} {
		if d.Class != connectly.ClassStopRun {
			t.Errorf("%s: read as %s (%q), want stop-run", name, d.Class, d.Key)
		}
	}
}

// A send made by Herald's client with its defaults starts no Connectly flow, on either
// endpoint, where a campaignName would (reference 2.1, 10.8): the name goes out only when
// ClientConfig.SendCampaignName says so.
func TestDefaultClientStartsNoFlow(t *testing.T) {
	t.Parallel()
	const business, key, to = "biz-flow", "key-0123456789abcdef", "+15550000001"
	for _, named := range []bool{false, true} {
		srv, url := fakeconnectly.StartForTest(t, fakeconnectly.Config{BusinessID: business, APIKey: key, RateLimit: -1,
			CampaignFlowMessages: 2})
		c, err := connectly.NewClient(connectly.ClientConfig{BaseURL: url, BusinessID: business, APIKey: key, SendCampaignName: named})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if _, err := c.SendTemplate(ctx, connectly.TemplateMessage{Number: to, TemplateName: "promo", Language: "en", CampaignName: "spring"}); err != nil {
			t.Fatal(err)
		}
		if err := srv.OpenWindow(to, time.Time{}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.SendSession(ctx, connectly.SessionMessage{To: to, CampaignName: "spring", Content: connectly.SessionContent{Text: "hi"}}); err != nil {
			t.Fatal(err)
		}
		want := 0
		if named {
			want = 2
		}
		if st := srv.Stats(); st.Flows != want {
			t.Errorf("SendCampaignName %v: %d flows started, want %d", named, st.Flows, want)
		}
	}
}
