package fakeconnectly

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// paramTemplates are templates whose bodies the fake knows, and one it does not.
var paramTemplates = []Template{
	{Name: "order", Language: "en", Header: "IMAGE", Body: "Hi {{1}}, order {{2}} shipped.", Category: "MESSAGE_TEMPLATE_GROUP_CATEGORY_UTILITY", Footer: "Shop"},
	{Name: "greet", Language: "en", Header: "TEXT", HeaderText: "Hello {{1}}", Body: "Welcome aboard"},
	{Name: "plain", Language: "en", Body: "Nothing to fill in"},
	{Name: "loose", Language: "en"},
}

// sendTemplate posts a template send of name/en with params (a JSON array) to number.
func sendTemplate(t *testing.T, base, number, name, params string) rawAnswer {
	t.Helper()
	return postTo(t, base+templatePath(testBusiness),
		`{"number":"`+number+`","templateName":"`+name+`","language":"en","parameters":`+params+`,"callbackData":{"r":"`+number+`"}}`)
}

// TestReference2_2ParametersMatchTheTemplate: a send to a template whose body the fake knows
// must carry a body_N for each {{N}} and no other, header_text only for a header with a
// variable, a header media key only for a header of that media (reference 2.2: "header_text
// ... only valid when the template header contains a variable"; body_N maps to {{N}}); a
// mismatch is 400 with the 4.1 body, ERROR_TYPE_INVALID_REQUEST (4.2) and
// ERROR_CODE_MESSAGE_TEMPLATE_INPUT_INVALID (4.3 #6; Meta's 132000, 9.2). A template whose
// body is not known takes any parameters, as before.
func TestReference2_2ParametersMatchTheTemplate(t *testing.T) {
	t.Parallel()
	s, base := newFake(t, Config{RateLimit: -1, Templates: paramTemplates})
	const img = `{"name":"header_image","value":"https://example.com/h.png"}`
	tests := []struct {
		name, template, params string
		wantMsg                string // "" for accepted
	}{
		{"all filled", "order", `[` + img + `,{"name":"body_1","value":"Ana"},{"name":"body_2","value":"#1"}]`, ""},
		{"order of parameters does not matter", "order", `[{"name":"body_2","value":"#1"},{"name":"body_1","value":"Ana"}]`, ""},
		{"body_2 missing", "order", `[{"name":"body_1","value":"Ana"}]`,
			`template "order" (en): parameter body_2 is missing: the body has {{2}}`},
		{"no parameters at all", "order", `[]`, `template "order" (en): parameter body_1 is missing: the body has {{1}}`},
		{"extra body_3", "order", `[{"name":"body_1","value":"Ana"},{"name":"body_2","value":"#1"},{"name":"body_3","value":"x"}]`,
			`template "order" (en): parameter body_3: the body has no {{3}}`},
		{"header_text without a text header", "order", `[{"name":"header_text","value":"x"},{"name":"body_1","value":"Ana"},{"name":"body_2","value":"#1"}]`,
			`template "order" (en): parameter header_text: the template's header has no variable`},
		{"video for an image header", "order", `[{"name":"header_video","value":"https://example.com/v.mp4"},{"name":"body_1","value":"Ana"},{"name":"body_2","value":"#1"}]`,
			`template "order" (en): parameter header_video: the template has no video header`},
		{"text header filled", "greet", `[{"name":"header_text","value":"Ana"}]`, ""},
		{"text header variable missing", "greet", `[]`, `template "greet" (en): parameter header_text is missing: the header has a variable`},
		{"body_1 for a body without variables", "greet", `[{"name":"header_text","value":"Ana"},{"name":"body_1","value":"x"}]`,
			`template "greet" (en): parameter body_1: the body has no {{1}}`},
		{"image for a text header", "greet", `[{"name":"header_text","value":"Ana"},` + img + `]`,
			`template "greet" (en): parameter header_image: the template has no image header`},
		{"no variables, no parameters", "plain", `[]`, ""},
		{"header_text for a template without header", "plain", `[{"name":"header_text","value":"x"}]`,
			`template "plain" (en): parameter header_text: the template's header has no variable`},
		{"document for a template without header", "plain", `[{"name":"header_document","value":"https://example.com/a.pdf"}]`,
			`template "plain" (en): parameter header_document: the template has no document header`},
		{"unknown body takes anything", "loose", `[{"name":"body_7","value":"x"},{"name":"header_text","value":"y"},{"name":"header_video","value":"https://example.com/v.mp4"}]`, ""},
		{"unknown body takes nothing", "loose", `[]`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := sendTemplate(t, base, "+15550001234", tc.template, tc.params)
			if tc.wantMsg == "" {
				if a.status != http.StatusOK {
					t.Fatalf("status %d %s, want 200", a.status, a.body)
				}
				return
			}
			if a.status != http.StatusBadRequest {
				t.Fatalf("status %d %s, want 400", a.status, a.body)
			}
			checkStandardBody(t, a, tc.wantMsg, TypeInvalidRequest, CodeTemplateInputInvalid, tc.wantMsg)
		})
	}
	if st := s.Stats(); st.Errors[CodeTemplateInputInvalid] != 10 {
		t.Errorf("stats %+v, want 10 refusals keyed %s", st, CodeTemplateInputInvalid)
	}
}

// TestReference7ListingAgreesWithSend: every translation the listing shows approved is one a
// send may name (with the parameters its components ask for), every other one is refused
// ERROR_CODE_MESSAGE_TEMPLATE_NOT_FOUND; groups carry the template's category and every
// translation its templateComponents in the create call's shapes (reference 7).
func TestReference7ListingAgreesWithSend(t *testing.T) {
	t.Parallel()
	tmpls := append([]Template{
		{Name: "order", Language: "pt_BR", Status: TemplatePending, Body: "Oi {{1}}"},
		{Name: "old", Language: "en", Status: TemplateRejected, Category: CategoryAuthentication},
	}, paramTemplates...)
	_, base := newFake(t, Config{RateLimit: -1, Templates: tmpls})
	status, _, raw := post(t, base, "/v1/businesses/"+testBusiness+"/get/templates", testKey, "{}")
	if status != http.StatusOK {
		t.Fatalf("listing: %d %s", status, raw)
	}
	var listing struct {
		Entity struct {
			TemplateGroups []struct {
				Name      string `json:"name"`
				Category  string `json:"category"`
				Templates []struct {
					Language struct {
						Code string `json:"code"`
					} `json:"language"`
					Status             string            `json:"status"`
					TemplateComponents []json.RawMessage `json:"templateComponents"`
					ExternalTemplate   struct {
						WhatsApp struct {
							Category   string `json:"category"`
							Components []struct {
								Type string  `json:"type"`
								Text *string `json:"text"`
							} `json:"components"`
						} `json:"whatsapp"`
					} `json:"externalTemplate"`
				} `json:"templates"`
			} `json:"templateGroups"`
		} `json:"entity"`
	}
	if err := json.Unmarshal(raw, &listing); err != nil {
		t.Fatal(err)
	}
	categories := map[string]string{}
	listed := 0
	for _, g := range listing.Entity.TemplateGroups {
		categories[g.Name] = g.Category
		for _, tm := range g.Templates {
			listed++
			if tm.ExternalTemplate.WhatsApp.Category != g.Category {
				t.Errorf("%s: Meta category %q, group %q", g.Name, tm.ExternalTemplate.WhatsApp.Category, g.Category)
			}
			// The parameters the listed components ask for.
			var params []string
			for _, c := range tm.ExternalTemplate.WhatsApp.Components {
				switch {
				case c.Type == "HEADER" && c.Text != nil:
					params = append(params, `{"name":"header_text","value":"Ana"}`)
				case c.Type == "BODY":
					for _, n := range variables(*c.Text) {
						params = append(params, fmt.Sprintf(`{"name":"body_%d","value":"v"}`, n))
					}
				}
			}
			a := postTo(t, base+templatePath(testBusiness), fmt.Sprintf(`{"number":"+15550001234","templateName":%q,"language":%q,"parameters":[%s]}`,
				g.Name, tm.Language.Code, strings.Join(params, ",")))
			if tm.Status == TemplateApproved {
				if a.status != http.StatusOK {
					t.Errorf("listed approved %s/%s: send answered %d %s", g.Name, tm.Language.Code, a.status, a.body)
				}
			} else if a.status != http.StatusBadRequest || !strings.Contains(string(a.body), CodeTemplateNotFound) {
				t.Errorf("listed %s %s/%s: send answered %d %s, want %s", tm.Status, g.Name, tm.Language.Code, a.status, a.body, CodeTemplateNotFound)
			}
		}
	}
	if listed != len(tmpls) {
		t.Errorf("%d translations listed, want %d", listed, len(tmpls))
	}
	if want := map[string]string{"order": "UTILITY", "old": "AUTHENTICATION", "greet": "MARKETING", "plain": "MARKETING", "loose": "MARKETING"}; fmt.Sprint(categories) != fmt.Sprint(want) {
		t.Errorf("categories %v, want %v", categories, want)
	}
	// A name or language not listed is refused.
	for _, nl := range [][2]string{{"nope", "en"}, {"order", "fr"}} {
		a := postTo(t, base+templatePath(testBusiness), `{"number":"+15550001234","templateName":"`+nl[0]+`","language":"`+nl[1]+`"}`)
		if a.status != http.StatusBadRequest || !strings.Contains(string(a.body), CodeTemplateNotFound) {
			t.Errorf("unlisted %v: %d %s", nl, a.status, a.body)
		}
	}
	// templateComponents in the create call's shapes.
	for _, g := range listing.Entity.TemplateGroups {
		for _, tm := range g.Templates {
			got := "[" + string(joinRaw(tm.TemplateComponents)) + "]"
			var want string
			switch g.Name + "/" + tm.Language.Code {
			case "order/en":
				want = `[{"header":{"media":{"type":"TYPE_IMAGE","example":["https://example.com/header"]}}},` +
					`{"body":{"text":{"text":"Hi {{1}}, order {{2}} shipped.","example":["example 1","example 2"]}}},` +
					`{"footer":{"text":{"text":"Shop"}}}]`
			case "greet/en":
				want = `[{"header":{"text":{"text":"Hello {{1}}","example":["example 1"]}}},{"body":{"text":{"text":"Welcome aboard"}}}]`
			case "loose/en", "old/en":
				want = `[]`
			default:
				continue
			}
			if got != want {
				t.Errorf("%s/%s templateComponents\n%s\nwant\n%s", g.Name, tm.Language.Code, got, want)
			}
		}
	}
}

func joinRaw(list []json.RawMessage) []byte {
	var parts []string
	for _, r := range list {
		parts = append(parts, string(r))
	}
	return []byte(strings.Join(parts, ","))
}

// TestReference7DeleteTemplate: DELETE …/templates/{name} removes every language, answers
// 200 {} also for a template that does not exist (idempotent), and the send endpoint then
// refuses the name as not found, on a fake with templates and on one that takes any name.
func TestReference7DeleteTemplate(t *testing.T) {
	t.Parallel()
	del := func(base, name, key string) (int, string) {
		t.Helper()
		status, _, raw := request(t, http.MethodDelete, base+"/v1/businesses/"+testBusiness+"/templates/"+name, key, "")
		return status, string(raw)
	}
	_, base := newFake(t, Config{RateLimit: -1, Templates: append([]Template{{Name: "order", Language: "pt_BR", Body: "Oi {{1}}"}}, paramTemplates...)})
	if a := sendTemplate(t, base, "+15550001234", "plain", `[]`); a.status != 200 {
		t.Fatalf("before the delete: %d %s", a.status, a.body)
	}
	for i, name := range []string{"order", "order", "never-was"} {
		if status, body := del(base, name, testKey); status != 200 || body != "{}" {
			t.Errorf("delete %d of %s: %d %s, want 200 {}", i, name, status, body)
		}
	}
	if status, _ := del(base, "plain", ""); status != http.StatusUnauthorized {
		t.Errorf("delete without a key: %d", status)
	}
	if status, _, _ := request(t, http.MethodGet, base+"/v1/businesses/"+testBusiness+"/templates/plain", testKey, ""); status != http.StatusMethodNotAllowed {
		t.Errorf("GET templates/plain: %d, want 405", status)
	}
	_, _, raw := post(t, base, "/v1/businesses/"+testBusiness+"/get/templates", testKey, "")
	if strings.Contains(string(raw), `"order"`) || !strings.Contains(string(raw), `"plain"`) {
		t.Errorf("listing after the delete: %s", raw)
	}
	for _, lang := range []string{"en", "pt_BR"} {
		a := postTo(t, base+templatePath(testBusiness), `{"number":"+15550001234","templateName":"order","language":"`+lang+`","parameters":[{"name":"body_1","value":"a"},{"name":"body_2","value":"b"}]}`)
		if a.status != 400 || !strings.Contains(string(a.body), CodeTemplateNotFound) {
			t.Errorf("send to deleted order/%s: %d %s", lang, a.status, a.body)
		}
	}

	_, anyBase := newFake(t, Config{RateLimit: -1})
	if status, body := del(anyBase, "promo", testKey); status != 200 || body != "{}" {
		t.Errorf("delete on a fake with no templates: %d %s", status, body)
	}
	if a := sendRaw(t, anyBase, "+15550001234"); a.status != 400 || !strings.Contains(string(a.body), CodeTemplateNotFound) {
		t.Errorf("send to deleted promo: %d %s", a.status, a.body)
	}
	if a := sendTemplate(t, anyBase, "+15550001234", "other", `[]`); a.status != 200 {
		t.Errorf("send to another name: %d %s", a.status, a.body)
	}
}

// TestReference7FailAtDelivery: a template configured with DeliveryFailure has its sends
// accepted (200 {"id"}) and then failed by a delivery_failed event with that code and
// details (reference 7, 10.14), whatever the fates say; a paused template without it keeps
// the default story, and so does every other template.
func TestReference7FailAtDelivery(t *testing.T) {
	t.Parallel()
	sink := &wireSink{}
	s, base := newFake(t, Config{RateLimit: -1,
		Templates: []Template{
			{Name: "gone", Language: "en", DeliveryFailure: CodeTemplateDeleted},
			{Name: "paused", Language: "en", MetaStatus: "PAUSED", DeliveryFailure: CodeUnspecified, DeliveryDetails: json.RawMessage(`{"metaCode":132015}`)},
			{Name: "paused-quietly", Language: "en", MetaStatus: "PAUSED"},
			{Name: "fine", Language: "en"},
		},
		Webhooks: WebhookConfig{URL: startSink(t, sink), Secret: "k", Seed: 7}})
	t.Cleanup(func() { s.Close() })
	ids := map[string]string{}
	for _, name := range []string{"gone", "paused", "paused-quietly", "fine"} {
		a := sendTemplate(t, base, "+15550001234", name, `[]`)
		var res sendResult
		if a.status != 200 || json.Unmarshal(a.body, &res) != nil {
			t.Fatalf("send %s: %d %s, want 200 with an id", name, a.status, a.body)
		}
		ids[res.ID] = name
	}
	settled(t, s)
	story := map[string][]string{}
	errs := map[string]map[string]any{}
	for _, c := range sink.snapshot() {
		su := party(c.body, "statusUpdate")
		name := ids[su["id"].(string)]
		story[name] = append(story[name], su["status"].(string))
		if e, ok := su["error"].(map[string]any); ok {
			errs[name] = e
		}
	}
	for name, want := range map[string]string{"gone": HookDeliveryFailed, "paused": HookDeliveryFailed, "paused-quietly": HookRead, "fine": HookRead} {
		if !slices.Contains(story[name], HookSent) || !slices.Contains(story[name], want) {
			t.Errorf("%s: events %v, want sent and %s", name, story[name], want)
		}
		if want == HookDeliveryFailed && (slices.Contains(story[name], HookDelivered) || slices.Contains(story[name], HookRead)) {
			t.Errorf("%s: events %v: a failed message is neither delivered nor read", name, story[name])
		}
	}
	if e := errs["gone"]; e["code"] != CodeTemplateDeleted || e["type"] != TypeInvalidRequest {
		t.Errorf("gone: error %v", e)
	}
	if e := errs["paused"]; e["code"] != CodeUnspecified || fmt.Sprint(e["details"]) != "map[metaCode:132015]" {
		t.Errorf("paused: error %v", e)
	}
	if len(errs) != 2 {
		t.Errorf("errors %v, want only gone and paused", errs)
	}
}

// kick wakes the webhook dispatcher after the test moved the fake's clock.
func kick(s *Server) {
	select {
	case s.webhooks().wake <- struct{}{}:
	default:
	}
}

// TestReference7DeleteFailsInFlightSends: "in-flight sends using it fail at delivery"
// (reference 7). A message whose delivered and read events are still ahead when its
// template is deleted gets delivery_failed (Config.DeletedTemplateFailure, by default
// ERROR_CODE_MESSAGE_TEMPLATE_DELETED) in their place, and the reply its reader would have
// sent is not sent (no record, no window); a message already delivered keeps its story, and
// so do messages of other templates.
func TestReference7DeleteFailsInFlightSends(t *testing.T) {
	t.Parallel()
	for _, code := range []string{"", "ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT"} {
		clock := newClock()
		sink := &wireSink{}
		s, base := newFake(t, Config{RateLimit: -1, Clock: clock.Now, DeletedTemplateFailure: code,
			Templates: []Template{{Name: "promo", Language: "en"}, {Name: "other", Language: "en"}},
			Webhooks: WebhookConfig{URL: startSink(t, sink), Secret: "k", Seed: 9, Delay: time.Hour,
				Replies: []Reply{{Text: "Thanks"}}}})
		t.Cleanup(func() { s.Close() })
		idOf := func(a rawAnswer) string {
			var res sendResult
			if a.status != 200 || json.Unmarshal(a.body, &res) != nil {
				t.Fatalf("send: %d %s", a.status, a.body)
			}
			return res.ID
		}
		early := idOf(sendTemplate(t, base, "+15550000001", "promo", `[]`))
		clock.Add(10 * time.Hour)
		kick(s)
		settled(t, s)
		late := idOf(sendTemplate(t, base, "+15550000002", "promo", `[]`))
		other := idOf(sendTemplate(t, base, "+15550000003", "other", `[]`))
		if st := s.WebhookStats(); st.Pending != 8 { // two messages: sent, delivered, read, reply
			t.Fatalf("webhook stats %+v, want the new messages' 8 events pending", st)
		}
		if status, _, raw := request(t, http.MethodDelete, base+"/v1/businesses/"+testBusiness+"/templates/promo", testKey, ""); status != 200 {
			t.Fatalf("delete: %d %s", status, raw)
		}
		clock.Add(10 * time.Hour)
		kick(s)
		settled(t, s)
		story := map[string][]string{}
		var lateErr map[string]any
		for _, c := range sink.snapshot() {
			su, ok := c.body["statusUpdate"].(map[string]any)
			if !ok {
				story["reply:"+party(c.body, "sender")["id"].(string)] = append(story["reply:"+party(c.body, "sender")["id"].(string)], "reply")
				continue
			}
			id := su["id"].(string)
			story[id] = append(story[id], su["status"].(string))
			if e, ok := su["error"].(map[string]any); ok && id == late {
				lateErr = e
			}
		}
		if s := story[late]; len(s) != 2 || !slices.Contains(s, HookSent) || !slices.Contains(s, HookDeliveryFailed) {
			t.Errorf("code %q: in-flight message events %v, want sent and delivery_failed", code, s)
		}
		if want := cmp.Or(code, CodeTemplateDeleted); lateErr["code"] != want {
			t.Errorf("code %q: failure %v, want code %s", code, lateErr, want)
		}
		for _, id := range []string{early, other} {
			if s := story[id]; len(s) != 3 || !slices.Contains(s, HookRead) {
				t.Errorf("code %q: message %s events %v, want sent, delivered, read", code, id, s)
			}
		}
		if story["reply:+15550000002"] != nil || len(s.RepliesFrom("+15550000002")) != 0 || !s.WindowOf("+15550000002").LastInbound.IsZero() {
			t.Errorf("code %q: the in-flight message's reader replied: %v %v", code, s.RepliesFrom("+15550000002"), s.WindowOf("+15550000002"))
		}
		if story["reply:+15550000001"] == nil || story["reply:+15550000003"] == nil {
			t.Errorf("code %q: replies %v, want the delivered messages' readers to reply", code, story)
		}
		for _, o := range s.WebhookOutcomes() {
			if o.MessageID == late && o.Planned != HookDeliveryFailed {
				t.Errorf("outcome %+v, want planned delivery_failed", o)
			}
		}
	}
}
