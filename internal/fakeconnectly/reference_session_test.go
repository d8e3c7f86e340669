package fakeconnectly

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// TestReference3_1BSUIDSessionSends: the newer page takes a bare BSUID in recipient.id, the
// GitBook page puts it in recipient.userId and says BSUID-only session sends "currently
// return a 400" (reference 3, 3.1, 6, 10.9). By default the fake takes both forms; with
// RefuseBSUIDSessions it answers every BSUID-only recipient 400 (ERROR_TYPE_INVALID_REQUEST,
// no code), while a phone recipient, with or without a userId beside it, is still taken.
func TestReference3_1BSUIDSessionSends(t *testing.T) {
	t.Parallel()
	const bsuid = "US.13491208655302741918"
	bodies := map[string]string{
		"bsuid in id":        `{"recipient":{"id":"` + bsuid + `","channelType":"whatsapp"},"message":{"text":"Hi"}}`,
		"bsuid in userId":    `{"recipient":{"userId":"` + bsuid + `","channelType":"whatsapp"},"message":{"text":"Hi"}}`,
		"bsuid in user_id":   `{"recipient":{"user_id":"` + bsuid + `","channel_type":"whatsapp"},"message":{"text":"Hi"}}`,
		"phone":              `{"recipient":{"id":"+15550001234","channelType":"whatsapp"},"message":{"text":"Hi"}}`,
		"phone and a userId": `{"recipient":{"id":"+15550001234","userId":"` + bsuid + `","channelType":"whatsapp"},"message":{"text":"Hi"}}`,
	}
	for _, refuse := range []bool{false, true} {
		s, base := newFake(t, Config{RateLimit: -1, RefuseBSUIDSessions: refuse})
		for _, n := range []string{bsuid, "+15550001234"} {
			if err := s.OpenWindow(n, time.Time{}); err != nil {
				t.Fatal(err)
			}
		}
		for name, body := range bodies {
			a := postSession(t, base, body)
			bsuidOnly := name != "phone" && name != "phone and a userId"
			if !refuse || !bsuidOnly {
				if a.status != http.StatusOK {
					t.Errorf("refuse=%v, %s: %d %s, want 200", refuse, name, a.status, a.body)
				}
				continue
			}
			m := errorFields(t, a)
			if a.status != http.StatusBadRequest || m["type"] != TypeInvalidRequest || m["code"] != CodeUnspecified {
				t.Errorf("refuse=%v, %s: %d %s, want 400 ERROR_TYPE_INVALID_REQUEST with no code of its own (ERROR_CODE_UNSPECIFIED)", refuse, name, a.status, a.body)
			}
		}
		if refuse {
			if st := s.Stats(); st.SessionsAccepted != 2 || st.Errors["HTTP_400"] != 3 {
				t.Errorf("stats %+v, want 2 taken and 3 refused", st)
			}
		}
	}
}

// TestReference3_1BothSpellings: every message kind of reference 3.1 is taken in camelCase and
// in the GitBook's snake_case (list_message, reply_button_message), and the record names the
// same content kind for both.
func TestReference3_1BothSpellings(t *testing.T) {
	t.Parallel()
	const to = `"recipient":{"id":"+15550001234","channelType":"whatsapp"},"sender":{"id":"+14155550100","channel_type":"whatsapp"},`
	cases := []struct {
		kind, camel, snake string
	}{
		{ContentList,
			`"message":{"text":"Pick","listMessage":{"button":{"text":"Choose"},"sections":[{"title":"Shoes","rows":[{"id":"1","text":"Sneakers","description":"White"}]}],"header":{"text":"H"},"footer":{"text":"F"}}}`,
			`"message":{"text":"Pick","list_message":{"button":{"text":"Choose"},"sections":[{"title":"Shoes","rows":[{"id":"1","text":"Sneakers","description":"White"}]}],"header":{"text":"H"},"footer":{"text":"F"}}}`},
		{ContentReplyButtons,
			`"message":{"text":"Go?","replyButtonMessage":{"buttons":[{"id":"y","text":"Yes"},{"id":"n","text":"No"}],"footer":{"text":"F"}}}`,
			`"message":{"text":"Go?","reply_button_message":{"buttons":[{"id":"y","text":"Yes"},{"id":"n","text":"No"}],"footer":{"text":"F"}}}`},
		{ContentSingleProduct,
			`"message":{"singleProductMessage":{"catalogId":"c1","productId":"p1"}}`,
			`"message":{"single_product_message":{"catalogId":"c1","productId":"p1"}}`},
		{ContentMultiProduct,
			`"message":{"text":"Our picks","multiProductMessage":{"catalogId":"c1"}}`,
			`"message":{"text":"Our picks","multi_product_message":{"catalogId":"c1"}}`},
		{ContentAttachments,
			`"message":{"id":"01FPW47QF69Y5JZH24605VAKQB","text":"See","attachments":[{"type":"document","url":"https://example.com/a.pdf","caption":"Invoice","filename":"a.pdf"}]}`,
			`"message":{"id":"01FPW47QF69Y5JZH24605VAKQB","text":"See","attachments":[{"type":"document","url":"https://example.com/a.pdf","caption":"Invoice","filename":"a.pdf"}]}`},
		{ContentLocation,
			`"message":{"location":{"latitude":41.15,"longitude":-8.61,"name":"Shop","address":"Rua 1"}},"callbackData":{"k":1},"campaignName":"spring"`,
			`"message":{"location":{"latitude":41.15,"longitude":-8.61,"name":"Shop","address":"Rua 1"}},"callback_data":{"k":1},"campaign_name":"spring"`},
	}
	s, base := newFake(t, Config{RateLimit: -1, Senders: []string{"+14155550100"}})
	if err := s.OpenWindow("+15550001234", time.Time{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		for _, body := range []string{tc.camel, tc.snake} {
			s.Reset()
			a := postSession(t, base, "{"+to+body+"}")
			var res sendResult
			if a.status != 200 || json.Unmarshal(a.body, &res) != nil || !idPattern.MatchString(res.ID) {
				t.Errorf("%s: %d %s", body, a.status, a.body)
				continue
			}
			if recs := s.Received(); len(recs) != 1 || recs[0].Content != tc.kind {
				t.Errorf("%s: record %+v, want content %s", body, recs, tc.kind)
			}
		}
	}
}
