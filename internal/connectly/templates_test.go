package connectly_test

import (
	"context"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/internal/connectly"
)

// listing is a get/templates answer in the reference's shape (section 7): two translations of
// one group, Connectly's status APPROVED for both, Meta's raw status PAUSED for one of them
// (how Meta's PAUSED and DISABLED show is inferred: externalTemplate.whatsapp.status).
const listing = `{"entity": {"templateGroups": [{"id": "spring_sale", "name": "spring_sale", "category": "MARKETING", "templates": [
 {"channel": {"id": "c1", "externalId": "p1", "channelType": "CHANNEL_TYPE_WHATSAPP_CLOUD"}, "id": "1", "language": {"code": "en"},
  "status": "MESSAGE_TEMPLATE_STATUS_APPROVED", "externalTemplate": {"whatsapp": {"id": "1", "name": "spring_sale", "language": "en",
  "status": "APPROVED", "category": "MARKETING", "components": [{"type": "BODY", "text": "Hi {{1}}", "buttons": []}]}}},
 {"channel": {"id": "c1", "externalId": "p1", "channelType": "CHANNEL_TYPE_WHATSAPP_CLOUD"}, "id": "2", "language": {"code": "pt_BR"},
  "status": "MESSAGE_TEMPLATE_STATUS_APPROVED", "externalTemplate": {"whatsapp": {"id": "2", "name": "spring_sale", "language": "pt_BR",
  "status": "PAUSED", "category": "MARKETING", "components": [{"type": "BODY", "text": "Oi {{1}}", "buttons": []}]}}}
]}]}}`

// A translation Meta paused is approved in Connectly's status only: the pre-flight check says
// so, and passes the one Meta approved.
func TestCheckTemplateMetaStatus(t *testing.T) {
	t.Parallel()
	b := setup(t, replyJSON(200, listing))
	list, err := b.client.ListTemplates(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("listed %+v, want 2 translations", list)
	}
	for _, tpl := range list {
		problems := connectly.CheckTemplate(tpl, []string{"body_1"})
		switch tpl.Language {
		case "en":
			if tpl.MetaStatus != "APPROVED" || len(problems) != 0 {
				t.Errorf("en: meta status %q, problems %q, want APPROVED and none", tpl.MetaStatus, problems)
			}
		case "pt_BR":
			if tpl.MetaStatus != "PAUSED" || len(problems) != 1 || !strings.Contains(problems[0], "PAUSED") {
				t.Errorf("pt_BR: meta status %q, problems %q, want one naming PAUSED", tpl.MetaStatus, problems)
			}
		}
	}
	// A listing without Meta's object says nothing of Meta's status.
	if p := connectly.CheckTemplate(connectly.TemplateInfo{Status: "APPROVED"}, nil); len(p) != 0 {
		t.Errorf("problems %q for an approved template without Meta's object", p)
	}
}
