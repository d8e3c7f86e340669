package fakeconnectly

import (
	"strings"
	"testing"
)

// inboundFrom sends one inbound message from number through the control API and returns the
// body of the call that reached the sink.
func inboundFrom(t *testing.T, s *Server, base string, sink *wireSink, number, body string) map[string]any {
	t.Helper()
	if a := postTo(t, base+"/_fake/inbound", body); a.status != 200 {
		t.Fatalf("inbound %s: %d %s", body, a.status, a.body)
	}
	settled(t, s)
	var got map[string]any
	for _, c := range inboundCalls(sink.snapshot()) {
		if party(c.body, "sender")["id"] == number {
			got = c.body
		}
	}
	if got == nil {
		t.Fatalf("no inbound call from %s", number)
	}
	return got
}

// TestReference5_4CustomerName: the customer object is {id, channelType, name} and "name may
// be null" (5.4); the status example's customer is named. An inbound call carries the
// Reply's name as sender.name, and null without one.
func TestReference5_4CustomerName(t *testing.T) {
	t.Parallel()
	sink := &wireSink{}
	s, base := newFake(t, Config{Webhooks: WebhookConfig{URL: startSink(t, sink), Secret: "k", Seed: 1}})
	t.Cleanup(func() { s.Close() })
	named := inboundFrom(t, s, base, sink, "+15550000201", `{"number":"+15550000201","text":"hi","shape":"text","name":"Ana Souza"}`)
	if snd := party(named, "sender"); snd["name"] != "Ana Souza" || snd["channelType"] != "whatsapp" {
		t.Errorf("sender %v, want name Ana Souza", snd)
	}
	anon := inboundFrom(t, s, base, sink, "+15550000202", `{"number":"+15550000202","text":"hi","shape":"text"}`)
	if name, ok := party(anon, "sender")["name"]; !ok || name != nil {
		t.Errorf("sender %v, want name null", party(anon, "sender"))
	}
	if in := s.RepliesFrom("+15550000201"); len(in) != 1 || in[0].Name != "Ana Souza" {
		t.Errorf("record %+v, want the name", in)
	}
}

// TestReference5_4InboundMedia: "media: message.attachments[{type, url}]" (5.4), in each of the
// attachment types of 3.1 (image, video, audio, document), with a caption when the customer
// wrote one and a filename on a document (3.1: "filename for documents only"); no text, no
// callbackData.
func TestReference5_4InboundMedia(t *testing.T) {
	t.Parallel()
	sink := &wireSink{}
	s, base := newFake(t, Config{Webhooks: WebhookConfig{URL: startSink(t, sink), Secret: "k", Seed: 1}})
	t.Cleanup(func() { s.Close() })
	for i, c := range []struct{ media, caption, want string }{
		{"", "", MediaImage}, {MediaImage, "the box arrived open", MediaImage}, {MediaVideo, "see", MediaVideo},
		{MediaAudio, "", MediaAudio}, {MediaDocument, "my receipt", MediaDocument},
	} {
		number := "+1555000030" + string(rune('0'+i))
		body := inboundFrom(t, s, base, sink, number,
			`{"number":"`+number+`","text":"x","shape":"media","media":"`+c.media+`","caption":"`+c.caption+`"}`)
		msg, _ := body["message"].(map[string]any)
		atts, _ := msg["attachments"].([]any)
		if len(atts) != 1 || msg["text"] != nil || body["callbackData"] != nil {
			t.Fatalf("%s: message %v, want one attachment and no text", c.want, msg)
		}
		att := atts[0].(map[string]any)
		url, _ := att["url"].(string)
		if att["type"] != c.want || !strings.HasPrefix(url, "https://") {
			t.Errorf("%s: attachment %v", c.want, att)
		}
		if capt, has := att["caption"]; c.caption != "" && capt != c.caption || c.caption == "" && has {
			t.Errorf("%s: caption %v, want %q", c.want, att["caption"], c.caption)
		}
		if fn, has := att["filename"]; (c.want == MediaDocument) != has || has && !strings.HasSuffix(url, fn.(string)) {
			t.Errorf("%s: filename %v", c.want, fn)
		}
		if in := s.RepliesFrom(number); len(in) != 1 || in[0].Media != c.want || in[0].Caption != c.caption {
			t.Errorf("%s: record %+v", c.want, in)
		}
	}
	if a := postTo(t, base+"/_fake/inbound", `{"number":"+15550000399","text":"x","shape":"media","media":"sticker"}`); a.status != 400 ||
		!strings.Contains(string(a.body), "media") {
		t.Errorf("media sticker: %d %s, want 400", a.status, a.body)
	}
}

// TestReference5_4ReferralVideo: the referral's fields are "ctwaClid, sourceUrl, sourceId,
// sourceType, headline, body, mediaType, imageUrl, videoUrl, thumbnailUrl" (5.4): an image
// ad has imageUrl, a video ad videoUrl and thumbnailUrl.
func TestReference5_4ReferralVideo(t *testing.T) {
	t.Parallel()
	sink := &wireSink{}
	s, base := newFake(t, Config{Webhooks: WebhookConfig{URL: startSink(t, sink), Secret: "k", Seed: 1}})
	t.Cleanup(func() { s.Close() })
	for number, media := range map[string]string{"+15550000401": "", "+15550000402": MediaVideo} {
		body := inboundFrom(t, s, base, sink, number, `{"number":"`+number+`","text":"is it on sale?","shape":"referral","media":"`+media+`"}`)
		msg, _ := body["message"].(map[string]any)
		ref, _ := msg["referral"].(map[string]any)
		for _, k := range []string{"ctwaClid", "sourceUrl", "sourceId", "sourceType", "headline", "body", "mediaType"} {
			if v, _ := ref[k].(string); v == "" {
				t.Errorf("%s: referral.%s missing: %v", number, k, ref)
			}
		}
		_, img := ref["imageUrl"]
		_, vid := ref["videoUrl"]
		_, thumb := ref["thumbnailUrl"]
		if media == MediaVideo && (ref["mediaType"] != MediaVideo || img || !vid || !thumb) {
			t.Errorf("video ad: referral %v, want mediaType video, videoUrl and thumbnailUrl", ref)
		}
		if media == "" && (ref["mediaType"] != MediaImage || !img || vid || thumb) {
			t.Errorf("image ad: referral %v, want mediaType image and imageUrl", ref)
		}
	}
}
