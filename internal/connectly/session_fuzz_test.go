package connectly_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/heraldmsg/herald/internal/connectly"
)

// wireMessage is the message object as Connectly would read it, decoded independently of the
// client's own types.
type wireMessage struct {
	ID          *string           `json:"id"`
	Text        *string           `json:"text"`
	Attachments []json.RawMessage `json:"attachments"`
	Location    *struct {
		Latitude  *float64 `json:"latitude"`
		Longitude *float64 `json:"longitude"`
		Name      string   `json:"name"`
		Address   string   `json:"address"`
	} `json:"location"`
	ReplyButtonMessage *struct {
		Buttons []struct{ ID, Text string } `json:"buttons"`
		Header  *struct{ Text string }      `json:"header"`
		Footer  *struct{ Text string }      `json:"footer"`
	} `json:"replyButtonMessage"`
	ListMessage *struct {
		Button   struct{ Text string } `json:"button"`
		Sections []struct {
			Title string                                   `json:"title"`
			Rows  []struct{ ID, Text, Description string } `json:"rows"`
		} `json:"sections"`
		Header *struct{ Text string } `json:"header"`
		Footer *struct{ Text string } `json:"footer"`
	} `json:"listMessage"`
	SingleProductMessage json.RawMessage `json:"singleProductMessage"`
	MultiProductMessage  json.RawMessage `json:"multiProductMessage"`
}

// kinds returns the content kinds the wire message carries.
func (w wireMessage) kinds() []connectly.SessionKind {
	var ks []connectly.SessionKind
	if len(w.Attachments) > 0 {
		ks = append(ks, connectly.KindAttachment)
	}
	if w.Location != nil {
		ks = append(ks, connectly.KindLocation)
	}
	if w.ReplyButtonMessage != nil {
		ks = append(ks, connectly.KindReplyButtons)
	}
	if w.ListMessage != nil {
		ks = append(ks, connectly.KindList)
	}
	if w.SingleProductMessage != nil {
		ks = append(ks, connectly.KindSingleProduct)
	}
	if w.MultiProductMessage != nil {
		ks = append(ks, connectly.KindMultiProduct)
	}
	if len(ks) == 0 && w.Text != nil {
		ks = append(ks, connectly.KindText)
	}
	return ks
}

// FuzzSessionMessage decodes arbitrary content (the JSON form of a campaign's message: block),
// recipient, callback data and coordinates into a SessionMessage. Nothing may panic; a message
// Validate refuses never encodes and names a field; a message it accepts encodes to compact
// JSON carrying exactly the one content kind it has, within the limits.
func FuzzSessionMessage(f *testing.F) {
	for _, tc := range sessionCases {
		m := sessionMsg()
		tc.msg(&m)
		content, err := json.Marshal(m.Content)
		if err != nil {
			// Coordinates go through the float arguments below.
			content = []byte(`{"location":{"latitude":0,"longitude":0}}`)
		}
		lat, lon := 0.0, 0.0
		if l := m.Content.Location; l != nil && l.Latitude != nil && l.Longitude != nil {
			lat, lon = *l.Latitude, *l.Longitude
		}
		f.Add(content, m.To, []byte(m.CallbackData), lat, lon, tc.bsuid == connectly.BSUIDInUserID)
	}
	f.Add([]byte(`{"text":"x","reply_buttons":{"buttons":[{"id":"a","text":"A"},{"id":"b","text":"B"},{"id":"c","text":"C"},{"id":"d","text":"D"}]}}`), "+16044441111", []byte(nil), 0.0, 0.0, false)
	f.Add([]byte(`{"attachment":{"type":"image","url":"https://x.io/a"},"location":{}}`), "bsuid:US.1", []byte(`null`), 0.0, 0.0, true)
	f.Add([]byte(`{"single_product":null,"multi_product":[1]}`), "", []byte(`{"a":`), math.NaN(), math.Inf(-1), false)
	f.Add([]byte(`{"text":"\ud800"}`), "bsuid:", []byte(`"\u003c"`), 91.0, -181.0, false)

	f.Fuzz(func(t *testing.T, content []byte, to string, callback []byte, lat, lon float64, userID bool) {
		var c connectly.SessionContent
		if err := json.Unmarshal(content, &c); err != nil {
			return
		}
		// A coordinate the content gives takes the float argument (JSON has no NaN); one it
		// lacks stays missing.
		if l := c.Location; l != nil {
			if l.Latitude != nil {
				l.Latitude = &lat
			}
			if l.Longitude != nil {
				l.Longitude = &lon
			}
		}
		msg := connectly.SessionMessage{To: to, Content: c}
		if len(callback) > 0 {
			msg.CallbackData = json.RawMessage(callback)
		}
		field := connectly.BSUIDInID
		if userID {
			field = connectly.BSUIDInUserID
		}

		verr := msg.Validate()
		body, eerr := connectly.Wire{BSUIDField: field}.EncodeSession(msg)
		if verr != nil {
			var ie *connectly.InvalidMessageError
			if !errors.As(verr, &ie) || len(ie.Problems) == 0 || !errors.Is(verr, connectly.ErrInvalidMessage) {
				t.Fatalf("Validate = %#v, want an *InvalidMessageError with problems", verr)
			}
			for _, p := range ie.Problems {
				if p.Field == "" || p.Msg == "" {
					t.Fatalf("problem without a field or message: %+v", p)
				}
			}
			if eerr == nil || body != nil {
				t.Fatalf("invalid message encoded: %s", body)
			}
			return
		}
		if eerr != nil {
			t.Fatalf("valid message did not encode: %v", eerr)
		}

		var compact bytes.Buffer
		if err := json.Compact(&compact, body); err != nil || !bytes.Equal(compact.Bytes(), body) || !utf8.Valid(body) {
			t.Fatalf("body is not compact UTF-8 JSON: %s", body)
		}
		if c.Kind() == connectly.KindRaw {
			// A raw object goes out as written; FuzzRawMessage checks what it may hold.
			var got struct{ Message any }
			var want any
			if json.Unmarshal(body, &got) != nil || json.Unmarshal(c.Raw, &want) != nil || !reflect.DeepEqual(got.Message, want) {
				t.Fatalf("raw message changed on the way out: %s", body)
			}
			return
		}
		var req struct {
			Recipient    map[string]string `json:"recipient"`
			Sender       map[string]string `json:"sender"`
			Message      wireMessage       `json:"message"`
			CallbackData json.RawMessage   `json:"callbackData"`
			CampaignName string            `json:"campaignName"`
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			t.Fatalf("body does not decode: %v\n%s", err, body)
		}
		ks := req.Message.kinds()
		if len(ks) != 1 || ks[0] != c.Kind() {
			t.Fatalf("wire carries kinds %v, message has %q\n%s", ks, c.Kind(), body)
		}
		_, hasID := req.Recipient["id"]
		_, hasUserID := req.Recipient["userId"]
		if hasID == hasUserID || req.Recipient["channelType"] != "whatsapp" {
			t.Fatalf("recipient %v: want exactly one of id, userId, and channelType whatsapp", req.Recipient)
		}
		if len(req.CallbackData) > connectly.MaxCallbackData {
			t.Fatalf("callbackData of %d bytes went out", len(req.CallbackData))
		}
		w := req.Message
		switch ks[0] {
		case connectly.KindText:
			if utf8.RuneCountInString(*w.Text) > connectly.MaxSessionText {
				t.Fatalf("text over the limit went out")
			}
		case connectly.KindAttachment:
			if len(w.Attachments) != 1 || w.Text != nil {
				t.Fatalf("attachment message: %s", body)
			}
		case connectly.KindLocation:
			if w.Location.Latitude == nil || w.Location.Longitude == nil || w.Text != nil {
				t.Fatalf("location message: %s", body)
			}
		case connectly.KindReplyButtons:
			if n := len(w.ReplyButtonMessage.Buttons); n == 0 || n > connectly.MaxReplyButtons || w.Text == nil {
				t.Fatalf("reply buttons message: %s", body)
			}
		case connectly.KindList:
			rows := 0
			for _, s := range w.ListMessage.Sections {
				rows += len(s.Rows)
			}
			if rows == 0 || rows > connectly.MaxListRows || w.Text == nil {
				t.Fatalf("list message with %d rows: %s", rows, body)
			}
		case connectly.KindSingleProduct, connectly.KindMultiProduct:
			raw := w.SingleProductMessage
			if ks[0] == connectly.KindMultiProduct {
				raw = w.MultiProductMessage
			}
			if len(raw) == 0 || raw[0] != '{' || (ks[0] == connectly.KindMultiProduct && w.Text == nil) {
				t.Fatalf("product message: %s", body)
			}
		}
	})
}
