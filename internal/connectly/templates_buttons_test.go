package connectly_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"

	"github.com/heraldmsg/herald/internal/connectly"
)

// templatesListing is a get/templates answer in the shape of reference 7, with Meta's raw
// components carrying a BUTTONS component.
const templatesListing = `{"entity": {"templateGroups": [
 {"id": "spring_promo", "name": "spring_promo", "category": "MARKETING", "templates": [
  {"id": "1", "language": {"code": "en_US"}, "status": "MESSAGE_TEMPLATE_STATUS_APPROVED",
   "externalTemplate": {"whatsapp": {"name": "spring_promo", "language": "en_US", "status": "APPROVED", "components": [
     {"type": "HEADER", "format": "IMAGE", "text": null, "buttons": []},
     {"type": "BODY", "text": "Hi {{1}}", "buttons": []},
     {"type": "BUTTONS", "buttons": [
       {"type": "QUICK_REPLY", "text": "Yes, show me"},
       {"type": "URL", "text": "Shop", "url": "https://shop.example.com/{{1}}"},
       {"type": "QUICK_REPLY", "text": "Not now"}]}]}}},
  {"id": "2", "language": {"code": "pt_BR"}, "status": "MESSAGE_TEMPLATE_STATUS_APPROVED"},
  {"channel": {"id": "c-2", "externalId": "second-number", "channelType": "CHANNEL_TYPE_WHATSAPP_CLOUD"},
   "id": "3", "language": {"code": "en_US"}, "status": "MESSAGE_TEMPLATE_STATUS_APPROVED",
   "externalTemplate": {"whatsapp": {"name": "spring_promo", "language": "en_US", "status": "APPROVED", "components": [
     {"type": "BUTTONS", "buttons": [
       {"type": "QUICK_REPLY", "text": "Not now"},
       {"type": "QUICK_REPLY", "text": "Remind me"}]}]}}}]}]}}`

func TestTemplateButtons(t *testing.T) {
	t.Parallel()
	b := setup(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		if r.URL.Path != "/v1/businesses/"+testBusiness+"/get/templates" || r.Method != http.MethodPost {
			http.Error(w, "unexpected request", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(templatesListing))
	})
	ctx := context.Background()

	got, err := b.client.TemplateButtons(ctx, "spring_promo", "en_US")
	if err != nil {
		t.Fatalf("TemplateButtons: %v", err)
	}
	// The second listing is the same translation on another of the business's numbers: a
	// reply may come to either, so its buttons count too, each text once.
	if want := []string{"Yes, show me", "Not now", "Remind me"}; !slices.Equal(got, want) {
		t.Fatalf("TemplateButtons = %q, want %q (quick replies only, in order, of every listing)", got, want)
	}
	if _, err := b.client.TemplateButtons(ctx, "spring_promo", "pt_BR"); !errors.Is(err, connectly.ErrTemplateComponentsUnknown) {
		t.Fatalf("no components: err = %v, want ErrTemplateComponentsUnknown", err)
	}
	if _, err := b.client.TemplateButtons(ctx, "spring_promo", "es"); !errors.Is(err, connectly.ErrTemplateNotListed) {
		t.Fatalf("unlisted language: err = %v, want ErrTemplateNotListed", err)
	}
	if _, err := b.client.TemplateButtons(ctx, "other", "en_US"); !errors.Is(err, connectly.ErrTemplateNotListed) {
		t.Fatalf("unlisted template: err = %v, want ErrTemplateNotListed", err)
	}
}
