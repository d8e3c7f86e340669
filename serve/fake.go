package serve

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"time"

	"github.com/heraldmsg/herald/internal/fakeconnectly"
)

// fakeWebhookDelay is how long after accepting a message the fake calls its first webhook.
const fakeWebhookDelay = 200 * time.Millisecond

// FakeParams say how RunFakeConnectly runs the fake (`herald fake-connectly`); the names of
// its options are the command's flags.
type FakeParams struct {
	// Listen is the address to listen on.
	Listen string
	// BusinessID and APIKey are the business in the path and the accepted X-API-Key.
	BusinessID, APIKey string
	// Faults are the fault rules: "" or "none", "demo" (fakeconnectly.DemoRules), or the path
	// of a JSON list of rules.
	Faults string
	// Rate is the requests/s allowed on the send endpoint (fakeconnectly.Config.RateLimit);
	// ThrottleBody is the body of its 429 (error or empty).
	Rate         int
	ThrottleBody string
	// Webhooks is the mix of signed webhooks called for accepted messages: "" or "none",
	// "demo" (a realistic mix, fakeconnectly.DemoWebhooks) or "all-read"; they go to
	// WebhookURL (or addresses registered through the fake's webhook API), signed with
	// WebhookSecret.
	Webhooks, WebhookURL, WebhookSecret string
	// The contract's open choices, each fakeconnectly.Config's field of that name (the
	// command's flags of the same names; "" or false for the fake's default):
	// RetryAfter adds a Retry-After header to the rate limit's 429 (RateLimitRetryAfter);
	// WindowAnswer is how a session send to a closed window is answered;
	// NumberPunctuation is how a number written with punctuation is taken;
	// Strict lists refusals the reference does not state (fakeconnectly.ParseStrict);
	// RefuseBSUIDSessions answers a BSUID-only session send with 400;
	// Senders are the business's numbers (a send's sender must be one of them);
	// DeletedTemplateFailure is the code a deleted template's in-flight messages fail with;
	// InboundBusinessNumber names the business number written to in inbound messages
	// webhooks (WebhookConfig.NameBusinessNumber; by default they name none, as reference 5.4
	// shows them); DefaultLanguage is the language of a template send without one (by
	// default it is refused); DedupeMessageID deduplicates session sends on message.id;
	// CampaignFlowMessages is how many messages a flow started by a send's campaignName
	// sends (0: campaignName is a tag only).
	RetryAfter                              bool
	WindowAnswer, NumberPunctuation, Strict string
	RefuseBSUIDSessions                     bool
	Senders                                 []string
	DeletedTemplateFailure                  string
	InboundBusinessNumber                   bool
	DefaultLanguage                         string
	DedupeMessageID                         bool
	CampaignFlowMessages                    int
	// ConfigFile, when set, is the path of a JSON fakeconnectly.Config
	// (fakeconnectly.ParseConfig) that replaces every option above but Listen: it reaches
	// the knobs no option does (fates, templates, replies, management-endpoint rules...).
	// BusinessID, APIKey and WebhookSecret, when set, take precedence over the file's, so
	// the fake answers for the business and signs with the secret its clients use.
	ConfigFile string
	// Listening, when set, is told the fake's URL and how many fault rules it applies once it
	// listens.
	Listening func(url string, rules int)
}

// FakeOptionError says a FakeParams option cannot be used as given (an unknown webhook mix,
// or one with no secret to sign with); nothing was started.
type FakeOptionError struct{ msg string }

func (e FakeOptionError) Error() string { return e.msg }

// RunFakeConnectly serves a local fake of the Connectly API as p says until ctx is done.
// Faults that cannot be read are an error; options that cannot be used a FakeOptionError.
func RunFakeConnectly(ctx context.Context, p FakeParams) error {
	cfg, err := FakeConfig(p)
	if err != nil {
		return err
	}
	srv, err := fakeconnectly.New(cfg)
	if err != nil {
		// FakeConfig has read every file; what New refuses is an option's value.
		return FakeOptionError{err.Error()}
	}
	url, err := srv.Start(p.Listen)
	if err != nil {
		return err
	}
	if p.Listening != nil {
		p.Listening(url, len(cfg.Rules))
	}
	<-ctx.Done()
	return srv.Close()
}

// FakeConfig maps p onto the fake's config: its fault rules (read from the faults file) and
// its webhook mix, or the config file.
func FakeConfig(p FakeParams) (fakeconnectly.Config, error) {
	if p.ConfigFile != "" {
		return fakeConfigFile(p)
	}
	var rules []fakeconnectly.Rule
	switch p.Faults {
	case "", "none":
	case "demo":
		rules = fakeconnectly.DemoRules()
	default:
		b, err := os.ReadFile(p.Faults)
		if err != nil {
			return fakeconnectly.Config{}, fmt.Errorf("--faults: %w", err)
		}
		// A bad rule is named by its place in the list and its line and column in the file.
		if rules, err = fakeconnectly.ParseRules(b); err != nil {
			return fakeconnectly.Config{}, fmt.Errorf("--faults %s: %w", p.Faults, err)
		}
	}
	var hooks fakeconnectly.WebhookConfig
	switch p.Webhooks {
	case "", "none":
	case "demo", "all-read":
		if p.WebhookSecret == "" {
			return fakeconnectly.Config{}, FakeOptionError{fmt.Sprintf("--webhooks %s needs CONNECTLY_WEBHOOK_SECRET to sign the calls", p.Webhooks)}
		}
		hooks = fakeconnectly.WebhookConfig{URL: p.WebhookURL, Secret: p.WebhookSecret, Delay: fakeWebhookDelay}
		if p.Webhooks == "demo" {
			hooks = fakeconnectly.DemoWebhooks(p.WebhookURL, p.WebhookSecret, fakeWebhookDelay)
		}
	default:
		return fakeconnectly.Config{}, FakeOptionError{fmt.Sprintf("--webhooks %q: want none, demo or all-read", p.Webhooks)}
	}
	hooks.NameBusinessNumber = p.InboundBusinessNumber
	strict, err := fakeconnectly.ParseStrict(p.Strict)
	if err != nil {
		return fakeconnectly.Config{}, FakeOptionError{"--" + err.Error()}
	}
	return fakeconnectly.Config{BusinessID: p.BusinessID, APIKey: p.APIKey, RateLimit: p.Rate,
		RateLimitBody: p.ThrottleBody, RateLimitRetryAfter: p.RetryAfter, Rules: rules, Webhooks: hooks,
		WindowAnswer: p.WindowAnswer, NumberPunctuation: p.NumberPunctuation, Strict: strict,
		RefuseBSUIDSessions: p.RefuseBSUIDSessions, Senders: p.Senders,
		DeletedTemplateFailure: p.DeletedTemplateFailure, DefaultLanguage: p.DefaultLanguage,
		DedupeMessageID: p.DedupeMessageID, CampaignFlowMessages: p.CampaignFlowMessages}, nil
}

// fakeConfigFile reads p.ConfigFile, with p's business id, API key and webhook secret in
// place of the file's when they are set.
func fakeConfigFile(p FakeParams) (fakeconnectly.Config, error) {
	f, err := os.Open(p.ConfigFile)
	if err != nil {
		return fakeconnectly.Config{}, fmt.Errorf("--fake-config: %w", err)
	}
	defer f.Close()
	cfg, err := fakeconnectly.ParseConfig(f)
	if err != nil {
		return fakeconnectly.Config{}, fmt.Errorf("--fake-config %s: %w", p.ConfigFile, err)
	}
	cfg.BusinessID = cmp.Or(p.BusinessID, cfg.BusinessID)
	cfg.APIKey = cmp.Or(p.APIKey, cfg.APIKey)
	cfg.Webhooks.Secret = cmp.Or(p.WebhookSecret, cfg.Webhooks.Secret)
	return cfg, nil
}
