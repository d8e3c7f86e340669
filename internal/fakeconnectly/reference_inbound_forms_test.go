package fakeconnectly

import (
	"fmt"
	"strings"
	"testing"
)

// TestReference5_4InboundTopicAndTopLevelEmpty: the documented inbound examples have no topic
// field and some carry top-level attachments: [] and location: null (5.4). By default an
// inbound call has no topic and only a referral has the empty fields; InboundTopic adds
// "topic": "messages", and Reply.TopLevelEmpty adds the empty fields to any shape, from a
// reply rule or /_fake/inbound.
func TestReference5_4InboundTopicAndTopLevelEmpty(t *testing.T) {
	t.Parallel()
	const reader, writer = "+15550001301", "+15550001302"
	for _, withTopic := range []bool{false, true} {
		t.Run(fmt.Sprint("topic ", withTopic), func(t *testing.T) {
			t.Parallel()
			sink := &wireSink{}
			cfg, err := ParseConfig(strings.NewReader(fmt.Sprintf(`{"rateLimit":-1,"webhooks":{"inboundTopic":%v,"seed":3,
				"replies":[{"numbers":["%s"],"template":"promo","button":"Yes","shape":"button-context","topLevelEmpty":true}]}}`, withTopic, reader)))
			if err != nil || cfg.Webhooks.InboundTopic != withTopic || !cfg.Webhooks.Replies[0].TopLevelEmpty {
				t.Fatalf("ParseConfig: %+v, %v", cfg, err)
			}
			cfg.Webhooks.URL, cfg.Webhooks.Secret = startSink(t, sink), "k"
			s, base := newFake(t, cfg)
			t.Cleanup(func() { s.Close() })
			if a := sendRaw(t, base, reader); a.status != 200 {
				t.Fatalf("send: %d", a.status)
			}
			settled(t, s)
			for _, body := range []string{
				`{"number":"` + writer + `","text":"plain","shape":"text"}`,
				`{"number":"` + writer + `","text":"with empties","shape":"text","topLevelEmpty":true}`,
			} {
				if a := postTo(t, base+"/_fake/inbound", body); a.status != 200 {
					t.Fatalf("inbound %s: %d %s", body, a.status, a.body)
				}
			}
			settled(t, s)
			in := inboundCalls(sink.snapshot())
			if len(in) != 3 {
				t.Fatalf("%d inbound calls, want 3", len(in))
			}
			for _, c := range in {
				raw := string(c.raw)
				topic, hasTopic := c.body["topic"]
				if withTopic != hasTopic || hasTopic && topic != TopicMessages {
					t.Errorf("topic %v (present %v) in %s, want present=%v", topic, hasTopic, raw, withTopic)
				}
				if withTopic && !strings.HasPrefix(raw, `{"topic":"messages","timestamp":`) {
					t.Errorf("body %s: want the topic first, as on status events", raw)
				}
				empties := strings.Contains(raw, `"attachments":[]`) && strings.Contains(raw, `"location":null`)
				_, att := c.body["attachments"]
				_, loc := c.body["location"]
				wantEmpties := !strings.Contains(raw, `"text":"plain"`)
				if empties != wantEmpties || !wantEmpties && (att || loc) {
					t.Errorf("body %s: top-level empties %v, want %v", raw, empties, wantEmpties)
				}
			}
			// The button reply is still a button reply, with its context and callbackData.
			for _, c := range in {
				if party(c.body, "sender")["id"] == reader && (replyShapeOf(c.body) != ReplyButtonContext || c.body["callbackData"] == nil) {
					t.Errorf("reader's reply %s", c.raw)
				}
			}
		})
	}
}

// TestReference5_4CampaignMetadataPlaces: a status event's campaign name is documented both
// at the top level (metadata.campaign_name) and in statusUpdate.metadata.campaignName with a
// null top-level metadata, "parse both" (5.4). CampaignMetadata picks one place, both, or
// (by default) one or the other by the message id.
func TestReference5_4CampaignMetadataPlaces(t *testing.T) {
	t.Parallel()
	for _, place := range []string{"", CampaignMetaByID, CampaignMetaTop, CampaignMetaStatus, CampaignMetaBoth} {
		t.Run("place "+place, func(t *testing.T) {
			t.Parallel()
			sink := &wireSink{}
			cfg, err := ParseConfig(strings.NewReader(`{"rateLimit":-1,"webhooks":{"campaignMetadata":"` + place + `","seed":3}}`))
			if err != nil || cfg.Webhooks.CampaignMetadata != place {
				t.Fatalf("ParseConfig: %+v, %v", cfg, err)
			}
			cfg.Webhooks.URL, cfg.Webhooks.Secret = startSink(t, sink), "k"
			s, base := newFake(t, cfg)
			t.Cleanup(func() { s.Close() })
			for i := range 12 {
				body := fmt.Sprintf(`{"number":"+155500014%02d","templateName":"promo","language":"en","campaignName":"spring"}`, i)
				if a := postTo(t, base+templatePath(testBusiness), body); a.status != 200 {
					t.Fatalf("send: %d %s", a.status, a.body)
				}
			}
			settled(t, s)
			seen := map[string]int{}
			for _, c := range sink.snapshot() {
				top, _ := c.body["metadata"].(map[string]any)
				su := party(c.body, "statusUpdate")
				inner, _ := su["metadata"].(map[string]any)
				atTop, inStatus := top["campaign_name"] == "spring", inner["campaignName"] == "spring"
				if !atTop && c.body["metadata"] != nil {
					t.Errorf("metadata %v: want null when the name is not there", c.body["metadata"])
				}
				switch {
				case atTop && inStatus:
					seen["both"]++
				case atTop:
					seen["top"]++
				case inStatus:
					seen["status"]++
				default:
					t.Errorf("event %s carries no campaign name", c.raw)
				}
			}
			switch place {
			case "", CampaignMetaByID:
				if seen["top"] == 0 || seen["status"] == 0 || seen["both"] != 0 {
					t.Errorf("places %v: want some events with each, none with both", seen)
				}
			default:
				if len(seen) != 1 || seen[place] != 36 {
					t.Errorf("places %v: want all 36 events with %s", seen, place)
				}
			}
		})
	}
	if _, err := New(Config{BusinessID: "b", APIKey: "k", Webhooks: WebhookConfig{CampaignMetadata: "bottom"}}); err == nil {
		t.Error("New took CampaignMetadata \"bottom\"")
	}
}
