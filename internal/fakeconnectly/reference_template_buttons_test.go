package fakeconnectly

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// listedTranslation returns the one translation get/templates lists for name and language,
// decoded as plain JSON.
func listedTranslation(t *testing.T, base, name, language string) map[string]any {
	t.Helper()
	a := mustCall(t, http.MethodPost, base+"/v1/businesses/"+testBusiness+"/get/templates", "{}")
	var m struct {
		Entity struct {
			TemplateGroups []struct {
				Name      string           `json:"name"`
				Templates []map[string]any `json:"templates"`
			} `json:"templateGroups"`
		} `json:"entity"`
	}
	if a.status != 200 || json.Unmarshal(a.body, &m) != nil {
		t.Fatalf("get templates: %d %s", a.status, a.body)
	}
	for _, g := range m.Entity.TemplateGroups {
		for _, tm := range g.Templates {
			if g.Name == name && party(tm, "language")["code"] == language {
				return tm
			}
		}
	}
	t.Fatalf("get/templates lists no %s (%s): %s", name, language, a.body)
	return nil
}

// metaComponents returns the components of a translation's Meta object
// (externalTemplate.whatsapp.components), by type.
func metaComponents(t *testing.T, tm map[string]any) map[string]map[string]any {
	t.Helper()
	comps, _ := party(party(tm, "externalTemplate"), "whatsapp")["components"].([]any)
	out := map[string]map[string]any{}
	for _, c := range comps {
		m := c.(map[string]any)
		typ, _ := m["type"].(string)
		if _, dup := out[typ]; dup {
			t.Fatalf("two %s components: %v", typ, comps)
		}
		out[typ] = m
	}
	return out
}

// TestReference7TemplateButtons: POST /_fake/templates takes a template's buttons (Meta's
// type and text, a URL button's url and example, a phone button's number), and get/templates
// lists them where the reference's listing has buttons: in Meta's raw object, a BUTTONS
// component after the body and footer, {"type": "BUTTONS", "text": null, "buttons": [...]},
// each button as given; every other component keeps "buttons": []. Connectly's own
// templateComponents show no buttons (the reference gives no shape for them). GET
// /_fake/templates reads the buttons back, and a button without a type or a text is a 400
// that changes nothing.
func TestReference7TemplateButtons(t *testing.T) {
	t.Parallel()
	_, base := newFake(t, Config{RateLimit: -1})
	body := `[{"name": "spring_promo", "language": "en_US", "header": "IMAGE", "body": "Hi {{1}}, {{2}} off", "footer": "Reply STOP to opt out",
	  "buttons": [
	    {"type": "URL", "text": "Shop now", "url": "https://shop.example.com/{{1}}", "example": ["SPRING"]},
	    {"type": "QUICK_REPLY", "text": "Yes, show me"},
	    {"type": "QUICK_REPLY", "text": "Not now"},
	    {"type": "PHONE_NUMBER", "text": "Call us", "phoneNumber": "+14155550100"}]},
	  {"name": "plain", "language": "en", "body": "Hello"}]`
	if a := postTo(t, base+"/_fake/templates", body); a.status != 200 {
		t.Fatalf("templates with buttons: %d %s", a.status, a.body)
	}

	tm := listedTranslation(t, base, "spring_promo", "en_US")
	comps, _ := party(party(tm, "externalTemplate"), "whatsapp")["components"].([]any)
	var types []string
	for _, c := range comps {
		types = append(types, c.(map[string]any)["type"].(string))
	}
	if !reflect.DeepEqual(types, []string{"HEADER", "BODY", "FOOTER", "BUTTONS"}) {
		t.Fatalf("components %v, want HEADER, BODY, FOOTER, BUTTONS", types)
	}
	byType := metaComponents(t, tm)
	buttons := byType["BUTTONS"]
	if text, ok := buttons["text"]; !ok || text != nil {
		t.Errorf("BUTTONS component %v, want text null as the reference's components without text", buttons)
	}
	var want []any
	if err := json.Unmarshal([]byte(`[
	    {"type": "URL", "text": "Shop now", "url": "https://shop.example.com/{{1}}", "example": ["SPRING"]},
	    {"type": "QUICK_REPLY", "text": "Yes, show me"},
	    {"type": "QUICK_REPLY", "text": "Not now"},
	    {"type": "PHONE_NUMBER", "text": "Call us", "phoneNumber": "+14155550100"}]`), &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(buttons["buttons"], want) {
		t.Errorf("buttons %v, want %v", buttons["buttons"], want)
	}
	for _, typ := range []string{"HEADER", "BODY", "FOOTER"} {
		if b, ok := byType[typ]["buttons"].([]any); !ok || len(b) != 0 {
			t.Errorf("%s component %v, want buttons []", typ, byType[typ])
		}
	}
	own, _ := tm["templateComponents"].([]any)
	if len(own) != 3 || strings.Contains(mustJSON(t, own), "Yes, show me") {
		t.Errorf("templateComponents %v, want the header, body and footer only", own)
	}
	if _, ok := metaComponents(t, listedTranslation(t, base, "plain", "en"))["BUTTONS"]; ok {
		t.Errorf("a template without buttons listed with a BUTTONS component")
	}

	got, err := Remote{BaseURL: base}.Templates(context.Background())
	if err != nil || len(got) != 2 || len(got[0].Buttons) != 4 ||
		got[0].Buttons[0].URL != "https://shop.example.com/{{1}}" || got[0].Buttons[3].PhoneNumber != "+14155550100" ||
		!reflect.DeepEqual(got[0].Buttons[1], TemplateButton{Type: "QUICK_REPLY", Text: "Yes, show me"}) {
		t.Errorf("templates read back: %+v, %v", got, err)
	}

	for _, bad := range []string{
		`[{"name":"a","language":"en","buttons":[{"type":"QUICK_REPLY"}]}]`,
		`[{"name":"a","language":"en","buttons":[{"text":"Yes"}]}]`,
		`[{"name":"a","language":"en","buttons":[{"type":"QUICK_REPLY","text":"Yes","payload":"x"}]}]`,
	} {
		if a := postTo(t, base+"/_fake/templates", bad); a.status != 400 {
			t.Errorf("templates %s: %d %s, want 400", bad, a.status, a.body)
		}
	}
	if b := metaComponents(t, listedTranslation(t, base, "spring_promo", "en_US"))["BUTTONS"]; b == nil {
		t.Errorf("a refused list changed the templates")
	}
}

// TestConfigTemplateButtons: a fake given its templates in its Config (--fake-config) lists
// their buttons as POST /_fake/templates does.
func TestConfigTemplateButtons(t *testing.T) {
	t.Parallel()
	var cfg Config
	if err := json.Unmarshal([]byte(`{"templates": [{"name": "promo", "language": "en", "body": "Hi",
	  "buttons": [{"type": "QUICK_REPLY", "text": "Stop promotions"}]}]}`), &cfg); err != nil {
		t.Fatal(err)
	}
	_, base := newFake(t, cfg)
	b := metaComponents(t, listedTranslation(t, base, "promo", "en"))["BUTTONS"]
	list, _ := b["buttons"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["text"] != "Stop promotions" || list[0].(map[string]any)["type"] != "QUICK_REPLY" {
		t.Errorf("BUTTONS component %v", b)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRepositoryTemplatesFile: configs/fake-templates.json, the templates the README gives
// the local fake, is a list POST /_fake/templates takes, and spring_promo has the
// quick-reply buttons configs/campaigns/spring-promo-replies.yaml answers.
func TestRepositoryTemplatesFile(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join("..", "..", "configs", "fake-templates.json"))
	if err != nil {
		t.Fatal(err)
	}
	_, base := newFake(t, Config{RateLimit: -1})
	if a := postTo(t, base+"/_fake/templates", string(raw)); a.status != 200 {
		t.Fatalf("configs/fake-templates.json: %d %s", a.status, a.body)
	}
	b := metaComponents(t, listedTranslation(t, base, "spring_promo", "en_US"))["BUTTONS"]
	var quick []string
	for _, x := range b["buttons"].([]any) {
		if m := x.(map[string]any); m["type"] == "QUICK_REPLY" {
			quick = append(quick, m["text"].(string))
		}
	}
	if !reflect.DeepEqual(quick, []string{"Yes, show me", "Not now", "Unsubscribe"}) {
		t.Errorf("spring_promo's quick replies %v", quick)
	}
}
