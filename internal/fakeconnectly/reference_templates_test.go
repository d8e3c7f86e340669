package fakeconnectly

import (
	"encoding/json"
	"net/http"
	"testing"
)

// TestReference7TemplateListing: POST get/templates (with no body or {}) answers the
// documented shape (reference 7): entity.templateGroups[] of {id, name, category, templates},
// each translation with channel {id, externalId, channelType}, id, language {code}, status,
// createdAt, updatedAt, rejectionReason (null unless rejected), components and
// templateComponents, and Meta's raw object in externalTemplate.whatsapp (id, name, language,
// status, category, components whose text may be null, lastUpdatedTime, rejectedReason,
// qualityScore {score}).
func TestReference7TemplateListing(t *testing.T) {
	t.Parallel()
	_, base := newFake(t, Config{Templates: []Template{
		{Name: "promo", Language: "en", Header: "IMAGE", Body: "Hi {{1}}"},
		{Name: "promo", Language: "pt_BR", Status: TemplateRejected},
	}})
	for _, body := range []string{"", "{}"} {
		status, ctype, raw := post(t, base, "/v1/businesses/"+testBusiness+"/get/templates", testKey, body)
		if status != http.StatusOK || ctype != "application/json" {
			t.Fatalf("status %d %q %s", status, ctype, raw)
		}
		var m struct {
			Entity struct {
				TemplateGroups []map[string]any `json:"templateGroups"`
			} `json:"entity"`
		}
		if err := json.Unmarshal(raw, &m); err != nil || len(m.Entity.TemplateGroups) != 1 {
			t.Fatalf("listing %s: %v", raw, err)
		}
		g := m.Entity.TemplateGroups[0]
		tmpls, _ := g["templates"].([]any)
		if g["id"] != "promo" || g["name"] != "promo" || g["category"] == nil || len(tmpls) != 2 {
			t.Fatalf("group %v", g)
		}
		for _, x := range tmpls {
			tm := x.(map[string]any)
			for _, k := range []string{"channel", "id", "language", "status", "createdAt", "updatedAt", "rejectionReason",
				"externalTemplate", "components", "templateComponents"} {
				if _, ok := tm[k]; !ok {
					t.Errorf("translation without %s: %v", k, tm)
				}
			}
			ch := party(tm, "channel")
			if ch["id"] == "" || ch["externalId"] == "" || ch["channelType"] != "CHANNEL_TYPE_WHATSAPP_CLOUD" {
				t.Errorf("channel %v", ch)
			}
			wa := party(party(tm, "externalTemplate"), "whatsapp")
			for _, k := range []string{"id", "name", "language", "status", "category", "components", "lastUpdatedTime", "rejectedReason", "qualityScore"} {
				if _, ok := wa[k]; !ok {
					t.Errorf("externalTemplate.whatsapp without %s: %v", k, wa)
				}
			}
			lang := party(tm, "language")["code"]
			switch lang {
			case "en":
				if tm["rejectionReason"] != nil || tm["status"] != TemplateApproved || wa["status"] != "APPROVED" {
					t.Errorf("approved translation %v", tm)
				}
				comps, _ := wa["components"].([]any)
				if len(comps) != 2 {
					t.Fatalf("components %v, want a header and a body", comps)
				}
				header := comps[0].(map[string]any)
				if text, ok := header["text"]; header["type"] != "HEADER" || header["format"] != "IMAGE" || !ok || text != nil {
					t.Errorf("image header %v, want text null as in the documented example", header)
				}
				if b := comps[1].(map[string]any); b["type"] != "BODY" || b["text"] != "Hi {{1}}" {
					t.Errorf("body %v", b)
				}
			case "pt_BR":
				if tm["status"] != TemplateRejected || tm["rejectionReason"] != "INVALID_FORMAT" || wa["status"] != "REJECTED" || wa["rejectedReason"] != "INVALID_FORMAT" {
					t.Errorf("rejected translation %v", tm)
				}
			default:
				t.Errorf("language %v", lang)
			}
		}
	}
}
