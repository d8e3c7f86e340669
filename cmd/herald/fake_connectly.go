package main

import (
	"cmp"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/heraldmsg/herald/internal/fakeconnectly"
	"github.com/heraldmsg/herald/serve"
)

func (a *app) fakeConnectlyCmd() *cobra.Command {
	var (
		listen, businessID, apiKey, faults string
		configFile                         string
		rate                               int
		webhookURL, webhookMix             string
		throttleBody                       string
		contract                           serve.FakeParams
		inboundBusinessNumber              bool
	)
	cmd := &cobra.Command{
		Use:   "fake-connectly",
		Short: "Serve a local fake of the Connectly API with fault injection (for demos and tests)",
		Long: `Serve a local fake of the Connectly API: the template and session send endpoints with the
real paths, X-API-Key auth, validation, error bodies and 200 requests/s limit, plus get/templates.
Session messages are accepted only inside the customer's 24-hour window to the send's sender
number, which the fake's own reply webhooks open (a reply goes to the number that sent the
message replied to), or POST /_fake/windows without a webhook.
--faults demo injects the demo's fault mix; --faults FILE reads a JSON list of rules.
Control endpoints for tests: GET /_fake/received, GET /_fake/stats, GET /_fake/accepted,
POST /_fake/reset, GET and POST /_fake/rules and /_fake/replies, POST /_fake/inbound,
GET, POST and DELETE /_fake/windows, GET and POST /_fake/fates and /_fake/templates.
--webhooks demo calls signed delivery_status and messages webhooks for accepted messages, at
--webhook-url or at the addresses registered through the fake's webhook API.
--fake-config FILE reads the whole configuration from a JSON file (the fake's Config, camelCase:
"rules", "templates", "webhooks": {"secret", "url", "fates", "replies", "delay": "200ms", ...},
"strict", ...) in place of the other options but --listen; --business-id, --api-key and
CONNECTLY_WEBHOOK_SECRET, when given, take precedence over the file's. POST /_fake/fates and
/_fake/templates change those while it runs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			contract.InboundBusinessNumber = inboundBusinessNumber
			if businessID == "" {
				businessID = a.getenv("CONNECTLY_BUSINESS_ID")
			}
			if apiKey == "" {
				apiKey = a.getenv("CONNECTLY_API_KEY")
			}
			listening := func(url string, rules int) {
				fmt.Fprintf(a.stdout, "fake Connectly listening on %s (business %s, %d rules)\n", url, cmp.Or(businessID, "from "+configFile), rules)
			}
			if configFile != "" {
				// The file is the whole configuration: an option beside it would be dropped
				// or fight it, so it is refused.
				var given []string
				for _, name := range configReplaces {
					if cmd.Flags().Changed(name) {
						given = append(given, "--"+name)
					}
				}
				if len(given) > 0 {
					return usageError{fmt.Errorf("--fake-config gives the whole configuration: put %s in the file", strings.Join(given, ", "))}
				}
				err := serve.RunFakeConnectly(cmd.Context(), serve.FakeParams{Listen: listen, BusinessID: businessID, APIKey: apiKey,
					WebhookSecret: a.getenv("CONNECTLY_WEBHOOK_SECRET"), ConfigFile: configFile, Listening: listening})
				if errors.As(err, new(serve.FakeOptionError)) {
					return usageError{err}
				}
				return err
			}
			if businessID == "" || apiKey == "" {
				return usageError{fmt.Errorf("fake-connectly needs --business-id and --api-key (or CONNECTLY_BUSINESS_ID / CONNECTLY_API_KEY)")}
			}
			p := contract
			p.Listen, p.BusinessID, p.APIKey, p.Faults, p.Rate, p.ThrottleBody = listen, businessID, apiKey, faults, rate, throttleBody
			p.Webhooks, p.WebhookURL, p.WebhookSecret = webhookMix, webhookURL, a.getenv("CONNECTLY_WEBHOOK_SECRET")
			p.Listening = listening
			err := serve.RunFakeConnectly(cmd.Context(), p)
			if errors.As(err, new(serve.FakeOptionError)) {
				return usageError{err}
			}
			return err
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8085", "address to listen on")
	// Not --config: that is the global option naming Herald's own config file.
	cmd.Flags().StringVar(&configFile, "fake-config", "", "a JSON file with the fake's whole configuration, in place of the other options (see --help)")
	cmd.Flags().StringVar(&businessID, "business-id", "", "business id in the path (env CONNECTLY_BUSINESS_ID)")
	cmd.Flags().StringVar(&apiKey, "api-key", "", "accepted X-API-Key (env CONNECTLY_API_KEY)")
	cmd.Flags().StringVar(&faults, "faults", "none", "fault rules: none, demo, or a JSON file")
	cmd.Flags().IntVar(&rate, "rate", fakeconnectly.DefaultRateLimit, "requests/s allowed on the send endpoint (-1: unlimited)")
	cmd.Flags().StringVar(&throttleBody, "throttle-body", "error", "body of the rate limit's 429: error (Connectly's JSON error body) or empty")
	cmd.Flags().StringVar(&webhookMix, "webhooks", "none", "call signed webhooks for accepted messages: none, demo (a realistic mix) or all-read; signed with CONNECTLY_WEBHOOK_SECRET")
	cmd.Flags().StringVar(&webhookURL, "webhook-url", "", "where the webhooks go (registrations made through the fake's webhook API take precedence)")
	// The contract's open choices (reference 3.1, 4.4, 6, 7, 10): the fake's default is the
	// reading the reference leans to; each flag gives the other one.
	f := cmd.Flags()
	f.BoolVar(&contract.RetryAfter, "retry-after", false, "add a Retry-After header to the rate limit's 429 (the reference documents none)")
	f.StringVar(&contract.WindowAnswer, "window-answer", fakeconnectly.WindowAnswerCodes, "answer to a session send outside the 24-hour window: "+
		strings.Join(fakeconnectly.WindowAnswers, ", "))
	f.StringVar(&contract.NumberPunctuation, "number-punctuation", fakeconnectly.NumbersNormalized, "a number written with punctuation is: normalize (taken as its E.164 form) or refuse")
	f.StringVar(&contract.Strict, "strict", "none", "refusals the reference does not state: none, all, or a list of "+strings.Join(fakeconnectly.StrictNames, ", "))
	f.BoolVar(&contract.RefuseBSUIDSessions, "refuse-bsuid-sessions", false, "answer a session send to a BSUID-only customer with 400 (the older docs' reading)")
	f.StringSliceVar(&contract.Senders, "senders", nil, "the business's sender numbers in E.164; a send's sender must be one of them (default: any)")
	f.BoolVar(&inboundBusinessNumber, "inbound-business-number", false, "name the business number written to as the recipient of inbound messages webhooks, "+
		"as Connectly's status events name both parties (by default none, the shape reference 5.4 shows); "+
		"the fake's windows are per number either way")
	f.StringVar(&contract.DeletedTemplateFailure, "deleted-template-failure", fakeconnectly.CodeTemplateDeleted, "error code of the delivery failure of a message whose template was deleted in flight")
	f.StringVar(&contract.DefaultLanguage, "default-language", "", "take a template send without language in this one, e.g. en (the older docs' reading; by default it is refused)")
	f.BoolVar(&contract.DedupeMessageID, "dedupe-message-id", false, "answer a session send that repeats a message.id already sent with the first message's id, sending nothing (by default it is a second message)")
	f.IntVar(&contract.CampaignFlowMessages, "campaign-flow-messages", 0, "a send with a campaignName also starts a flow that sends this many messages to the recipient (0: the name is a tag only)")
	return cmd
}

// configReplaces are the options of fake-connectly that --fake-config replaces.
var configReplaces = []string{"faults", "rate", "throttle-body", "webhooks", "webhook-url", "retry-after", "window-answer",
	"number-punctuation", "strict", "refuse-bsuid-sessions", "senders", "inbound-business-number", "deleted-template-failure",
	"default-language", "dedupe-message-id", "campaign-flow-messages"}
