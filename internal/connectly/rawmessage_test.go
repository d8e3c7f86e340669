package connectly_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/heraldmsg/herald/internal/connectly"
)

// TestRawMessageValidate pins every rule rawmessage.go states: what a raw object may hold,
// and the problem (by field) for what it may not.
func TestRawMessageValidate(t *testing.T) {
	t.Parallel()
	big := `{"text":"` + strings.Repeat("a", connectly.MaxSessionText) + `","replyButtonMessage":{"pad":"` + strings.Repeat("b", connectly.MaxRawMessage) + `"}}`
	cases := []struct {
		name string
		raw  string
		text string
		id   string
		want string // "field: words" of the problems, joined by "; "; "" for valid
	}{
		{name: "text alone", raw: `{"text":"Hi"}`},
		{name: "attachment with text", raw: `{"text":"Receipt","attachments":[{"type":"document","url":"https://x.test/r.pdf"}]}`},
		{name: "snake case", raw: `{"text":"Pick","list_message":{"anything":[1,2,3]}}`},
		{name: "product without text", raw: `{"singleProductMessage":{"catalogId":"c"}}`},
		{name: "id in the object", raw: `{"id":"m-1","text":"Hi"}`},
		{name: "text at its limit", raw: `{"text":"` + strings.Repeat("é", connectly.MaxSessionText) + `"}`},
		{name: "not an object", raw: `["text"]`, want: "raw: want a JSON object"},
		{name: "empty object", raw: `{}`, want: "raw: no content"},
		{name: "id alone", raw: `{"id":"m-1"}`, want: "raw: no content"},
		{name: "unknown key", raw: `{"text":"Hi","buttons":[]}`, want: "raw.buttons: not a field of a Connectly message"},
		{name: "unknown key quoted", raw: `{"text":"Hi","a b":1}`, want: `raw["a b"]: not a field`},
		{name: "both spellings", raw: `{"text":"Hi","listMessage":{},"list_message":{}}`, want: "raw.list_message: the same field as listMessage"},
		{name: "two content fields", raw: `{"location":{},"attachments":[{}]}`, want: "raw.location: a message has one content field besides text, this one also sets attachments, location"},
		{name: "text not a string", raw: `{"text":5}`, want: "raw.text: want a string"},
		{name: "blank text alone", raw: `{"text":"  "}`, want: "raw.text: required"},
		{name: "text over its limit", raw: `{"text":"` + strings.Repeat("a", connectly.MaxSessionText+1) + `"}`, want: "raw.text: 4097 characters"},
		{name: "two attachments", raw: `{"attachments":[{},{}]}`, want: "raw.attachments: 2 items, a message carries exactly one"},
		{name: "no attachment", raw: `{"attachments":[]}`, want: "raw.attachments: 0 items"},
		{name: "attachments not a list", raw: `{"attachments":{}}`, want: "raw.attachments: want a list"},
		{name: "id not a string", raw: `{"id":7,"text":"Hi"}`, want: "raw.id: want a string"},
		{name: "too large", raw: big, want: "bytes, at most 16384"},
		{name: "text beside raw", raw: `{"text":"Hi"}`, text: "Hello", want: "text: not allowed with raw"},
		{name: "invalid UTF-8", raw: "{\"text\":\"\xc1\"}", want: "raw: not valid UTF-8"},
		{name: "key twice", raw: `{"text":"a","text":"b"}`, want: "raw.text: given twice"},
		{name: "nested key twice", raw: `{"text":"t","replyButtonMessage":{"buttons":[{"id":"a"},{"id":"b","id":"c"}]}}`, want: "raw.replyButtonMessage.buttons[1].id: given twice"},
		{name: "same key in two objects", raw: `{"text":"t","replyButtonMessage":{"buttons":[{"id":"a","text":"A"},{"id":"b","text":"B"}],"header":{"text":"h"}}}`},
		{name: "multi-product without text", raw: `{"multiProductMessage":{"catalogId":"c1"}}`, want: "raw.text: required with multiProductMessage, as its body"},
		{name: "buttons without text", raw: `{"replyButtonMessage":{"buttons":[{"id":"a","text":"A"}]}}`, want: "raw.text: required with replyButtonMessage"},
		{name: "snake case list without text", raw: `{"list_message":{"button":{"text":"b"}}}`, want: "raw.text: required with list_message"},
		{name: "buttons with blank text", raw: `{"text":" ","reply_button_message":{"buttons":[{"id":"a","text":"A"}]}}`, want: "raw.text: required with reply_button_message"},
		{name: "multi-product with text", raw: `{"text":"Our picks","multi_product_message":{"catalogId":"c1"}}`},
		{name: "id twice", raw: `{"id":"a","text":"Hi"}`, id: "b", want: "id: also set in the raw object"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := connectly.SessionMessage{To: "+16044441111", ID: tc.id, Content: connectly.SessionContent{Text: tc.text, Raw: connectly.RawObject(tc.raw)}}
			if k := m.Content.Kind(); k != connectly.KindRaw {
				t.Fatalf("Kind = %q, want raw", k)
			}
			err := m.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				if _, err := (connectly.Wire{}).EncodeSession(m); err != nil {
					t.Fatalf("EncodeSession = %v", err)
				}
				return
			}
			var ie *connectly.InvalidMessageError
			if !errors.As(err, &ie) || !errors.Is(err, connectly.ErrInvalidMessage) {
				t.Fatalf("Validate = %v, want an InvalidMessageError", err)
			}
			parts := make([]string, len(ie.Problems))
			for i, p := range ie.Problems {
				parts[i] = p.String()
			}
			if got := strings.Join(parts, "; "); !strings.Contains(got, tc.want) {
				t.Errorf("problems = %q, want one starting %q", got, tc.want)
			}
			if _, err := (connectly.Wire{}).EncodeSession(m); err == nil {
				t.Error("EncodeSession encoded an invalid raw message")
			}
		})
	}
}

// TestRawMessageMapStrings pins how a raw object is rendered: every string value and no key,
// by a name that tells places apart, in a fixed order; numbers keep their text; the result is
// a new object.
func TestRawMessageMapStrings(t *testing.T) {
	t.Parallel()
	raw := connectly.RawObject(`{"text":"Hi {{.name}}","replyButtonMessage":{"buttons":[{"id":"yes","text":"Yes"},{"id":"","text":"No"}],"a.b":"dot","size":1.50,"on":true,"none":null}}`)
	c := connectly.SessionContent{Raw: raw}
	var fields []string
	out, err := c.MapStrings(func(field, s string) (string, error) {
		fields = append(fields, field)
		return strings.ToUpper(s), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `raw.replyButtonMessage["a.b"] raw.replyButtonMessage.buttons[0].id raw.replyButtonMessage.buttons[0].text raw.replyButtonMessage.buttons[1].text raw.text`
	if got := strings.Join(fields, " "); got != want {
		t.Errorf("fields =\n%s\nwant\n%s", got, want)
	}
	wantJSON := `{"replyButtonMessage":{"a.b":"DOT","buttons":[{"id":"YES","text":"YES"},{"id":"","text":"NO"}],"none":null,"on":true,"size":1.50},"text":"HI {{.NAME}}"}`
	if string(out.Raw) != wantJSON {
		t.Errorf("raw =\n%s\nwant\n%s", out.Raw, wantJSON)
	}
	if string(c.Raw) != string(raw) {
		t.Error("MapStrings changed the original")
	}

	boom := errors.New("no such column")
	_, err = c.MapStrings(func(field, s string) (string, error) {
		if field == "raw.replyButtonMessage.buttons[1].text" {
			return "", boom
		}
		return s, nil
	})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "raw.replyButtonMessage.buttons[1].text") {
		t.Errorf("err = %v, want the cause and the field", err)
	}
	if _, err := c.MapStrings(func(_, _ string) (string, error) { return "\xff", nil }); err == nil || !strings.Contains(err.Error(), "UTF-8") {
		t.Errorf("invalid UTF-8 out of a render: err = %v", err)
	}
}

// FuzzRawMessage feeds any bytes as a raw object: Validate never panics; what it lets through
// is sent as the same JSON value, with only the keys RawMessageKeys lists and at most one
// content field; MapStrings with the identity keeps the value.
func FuzzRawMessage(f *testing.F) {
	for _, s := range []string{
		`{"text":"Hi"}`, `{"text":"R","attachments":[{"type":"document","url":"https://x.test/r.pdf"}]}`,
		`{"list_message":{"a":[1,2.50,-0,1e3]},"text":"x"}`, `{"id":"m","text":"\u00e9<&>"}`,
		`{"text":"a","text":"b"}`, `{"singleProductMessage":{"k":null}}`, `[]`, `null`, `{"a b":"x"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		c := connectly.SessionContent{Raw: connectly.RawObject(raw)}
		if len(raw) == 0 || c.Validate() != nil {
			return
		}
		body, err := (connectly.Wire{}).EncodeSession(connectly.SessionMessage{To: "+16044441111", Content: c})
		if err != nil {
			t.Fatalf("valid raw %q: EncodeSession: %v", raw, err)
		}
		if !utf8.Valid(body) {
			t.Fatalf("valid raw %q went out as invalid UTF-8", raw)
		}
		var req struct{ Message map[string]any }
		if err := json.Unmarshal(body, &req); err != nil {
			t.Fatalf("body %q: %v", body, err)
		}
		var want map[string]any
		if err := json.Unmarshal(raw, &want); err != nil {
			t.Fatalf("valid raw %q does not decode: %v", raw, err)
		}
		if !reflect.DeepEqual(req.Message, want) {
			t.Fatalf("sent %v, want %v", req.Message, want)
		}
		content := 0
		for k := range req.Message {
			name, ok := connectly.RawMessageKeys[k]
			if !ok {
				t.Fatalf("key %q let through", k)
			}
			if name != "id" && name != "text" {
				content++
			}
		}
		if content > 1 {
			t.Fatalf("%d content fields let through: %q", content, raw)
		}
		same, err := c.MapStrings(func(_, s string) (string, error) { return s, nil })
		if err != nil {
			t.Fatalf("MapStrings identity: %v", err)
		}
		var got map[string]any
		if err := json.Unmarshal(same.Raw, &got); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("MapStrings identity = %s (%v), want %v", same.Raw, err, want)
		}
	})
}

// TestRawMessageWorkIsBounded: a raw object written larger than MaxRawMessage is refused
// before any string is rendered, and rendering stops once the strings pass it.
func TestRawMessageWorkIsBounded(t *testing.T) {
	t.Parallel()
	big := connectly.SessionContent{Raw: connectly.RawObject(`{"text":"` + strings.Repeat("a", connectly.MaxRawMessage) + `"}`)}
	calls := 0
	_, err := big.MapStrings(func(_, s string) (string, error) { calls++; return s, nil })
	if err == nil || !strings.Contains(err.Error(), "as written") || calls != 0 {
		t.Fatalf("err = %v after %d renders, want a refusal before any", err, calls)
	}

	var b strings.Builder
	b.WriteString(`{"text":"x","replyButtonMessage":{"k":[`)
	for i := range 1000 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"{{.a}}"`)
	}
	b.WriteString(`]}}`)
	many := connectly.SessionContent{Raw: connectly.RawObject(b.String())}
	calls = 0
	_, err = many.MapStrings(func(_, _ string) (string, error) { calls++; return strings.Repeat("v", 100), nil })
	if err == nil || !strings.Contains(err.Error(), "render to more than") {
		t.Fatalf("err = %v, want the render budget", err)
	}
	if max := connectly.MaxRawMessage/100 + 2; calls > max {
		t.Fatalf("%d renders, want it to stop after about %d", calls, max)
	}
}

// TestRawChoicesReadExactly: a raw message's buttons and rows are read as a protobuf gateway
// reads them, keys exactly; anything else is unread, never guessed.
func TestRawChoicesReadExactly(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, raw string
		buttons   string // ids and texts read, "" when none
		rows      string
		unread    bool
	}{
		{name: "buttons with header", raw: `{"text":"t","replyButtonMessage":{"header":{"text":"h"},"buttons":[{"id":"y","text":"Yes"}]}}`, buttons: "y/Yes"},
		{name: "snake case list", raw: `{"text":"t","list_message":{"button":{"text":"b"},"sections":[{"title":"s","rows":[{"id":"r1","text":"One","description":"d"}]}]}}`, rows: "r1/One"},
		{name: "key in another case", raw: `{"replyButtonMessage":{"buttons":[{"id":"y","text":"Yes"}],"Buttons":[{"id":"z","text":"No"}]}}`, unread: true},
		{name: "unknown key in a button", raw: `{"replyButtonMessage":{"buttons":[{"id":"y","title":"Yes please"}]}}`, unread: true},
		{name: "id not a string", raw: `{"replyButtonMessage":{"buttons":[{"id":1,"text":"Yes"}]}}`, unread: true},
		{name: "rows not a list", raw: `{"listMessage":{"sections":[{"rows":{}}]}}`, unread: true},
		{name: "no choices", raw: `{"text":"t"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch := connectly.RawObject(tc.raw).Choices()
			var bs, rs []string
			if ch.Buttons != nil {
				for _, b := range ch.Buttons.Buttons {
					bs = append(bs, b.ID+"/"+b.Text)
				}
			}
			if ch.List != nil {
				for _, s := range ch.List.Sections {
					for _, r := range s.Rows {
						rs = append(rs, r.ID+"/"+r.Text)
					}
				}
			}
			if got := strings.Join(bs, " "); got != tc.buttons {
				t.Errorf("buttons %q, want %q", got, tc.buttons)
			}
			if got := strings.Join(rs, " "); got != tc.rows {
				t.Errorf("rows %q, want %q", got, tc.rows)
			}
			if (ch.Unread != "") != tc.unread {
				t.Errorf("unread %q, want unread %v", ch.Unread, tc.unread)
			}
		})
	}
}
