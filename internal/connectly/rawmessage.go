package connectly

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// A raw message (SessionContent.Raw, `raw:` in a campaign file) is a whole Connectly message
// object, sent as written. Reference 3.1 asks for it: the inner shapes of session messages
// are known only from public client code, and some are not known at all, so a campaign may
// send what Herald's typed kinds do not model or refuse: text beside an attachment (3.1 shows
// it, 3 says "exactly one content type"), a field of a product message, a spelling Connectly
// takes. Every string value in it is a template over the audience row, as in the typed kinds;
// keys, numbers and booleans are sent as written.
//
// The choices Herald makes about a raw object are all in this file:
//   - its top-level keys are the reference's message fields (RawMessageKeys), in camelCase or
//     the GitBook's snake_case; any other key is refused, since the API is a protobuf gateway
//     that answers an unknown field with a 400 for every recipient;
//   - a key and its other spelling may not both be set;
//   - text may go with one other content field, and only one (reference 3: one content type;
//     3.1: text as a body or a caption); with a list, reply buttons or a multi-product message
//     (rawNeedsText) it is required and not blank: it is their body (reference 3: "required
//     with multiProductMessage"; 3.1 shows it in every list and buttons shape), and Connectly
//     answers ERROR_CODE_MESSAGE_TEXT_EMPTY to every recipient without it;
//   - attachments is a list of at most one item (ERROR_CODE_MESSAGE_ATTACHMENTS_NUMBER_INVALID);
//   - text is a string of at most MaxSessionText characters;
//   - the object, compacted, is at most MaxRawMessage bytes.
//
// Nothing else is checked: the point of a raw object is to send what Herald does not know.
// Connectly's answer to it is classified like any other.

// KindRaw is a raw Connectly message object (SessionContent.Raw).
const KindRaw SessionKind = "raw"

// MaxRawMessage bounds a raw message object, compacted, in bytes: ten times the largest
// typed message Herald builds (a list of ten rows at every limit is under 2 KiB), and small
// enough that rendering it per recipient stays cheap. Product objects (single_product,
// multi_product), copied into every recipient's message too, have the same bound.
const MaxRawMessage = 16 << 10

// RawMessageKeys maps every top-level key a raw message may set to its camelCase name, the
// spelling the reference sends (3.1); the snake_case ones are the GitBook's.
var RawMessageKeys = map[string]string{
	"id":                     "id",
	"text":                   "text",
	"attachments":            "attachments",
	"location":               "location",
	"listMessage":            "listMessage",
	"list_message":           "listMessage",
	"replyButtonMessage":     "replyButtonMessage",
	"reply_button_message":   "replyButtonMessage",
	"singleProductMessage":   "singleProductMessage",
	"single_product_message": "singleProductMessage",
	"multiProductMessage":    "multiProductMessage",
	"multi_product_message":  "multiProductMessage",
}

// rawMeta are the keys of RawMessageKeys that carry no content.
var rawMeta = map[string]bool{"id": true, "text": true}

// rawNeedsText are the content fields (camelCase) whose message needs text, as its body.
var rawNeedsText = map[string]bool{"listMessage": true, "replyButtonMessage": true, "multiProductMessage": true}

// validateRaw checks a raw message object against the rules above.
func validateRaw(v *validator, raw RawObject) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		v.add("raw", "want a JSON object (a Connectly message)")
		return
	}
	if !utf8.Valid(raw) {
		// It goes out as written, and JSON is UTF-8.
		v.add("raw", "not valid UTF-8")
	}
	if field := duplicateKey(raw); field != "" {
		// It goes out as written, and a gateway may read either value.
		v.add(field, "given twice")
	}
	if n := compactLen(raw); n > MaxRawMessage {
		v.add("raw", "%d bytes, at most %d", n, MaxRawMessage)
	}
	seen := map[string]string{}
	var content []string
	needsText := ""
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		name, ok := RawMessageKeys[k]
		if !ok {
			v.add(rawField(k), "not a field of a Connectly message (want one of %s)", strings.Join(rawKeyNames(), ", "))
			continue
		}
		if other, dup := seen[name]; dup {
			v.add(rawField(k), "the same field as %s: set one spelling", other)
			continue
		}
		seen[name] = k
		if !rawMeta[name] {
			content = append(content, k)
		}
		if rawNeedsText[name] && needsText == "" {
			needsText = k
		}
	}
	if len(content) > 1 {
		v.add(rawField(content[1]), "a message has one content field besides text, this one also sets %s", strings.Join(content, ", "))
	}
	if k, ok := seen["text"]; ok {
		var s string
		if err := json.Unmarshal(obj[k], &s); err != nil {
			v.add(rawField(k), "want a string")
		} else if needsText != "" && strings.TrimSpace(s) == "" {
			v.add(rawField(k), "required with %s, as its body", needsText)
		} else {
			v.text(rawField(k), s, len(content) == 0, MaxSessionText)
		}
	} else if len(content) == 0 {
		v.add("raw", "no content: set text or one of %s", strings.Join(rawContentNames(), ", "))
	} else if needsText != "" {
		v.add(rawField("text"), "required with %s, as its body", needsText)
	}
	if k, ok := seen["id"]; ok {
		var s string
		if err := json.Unmarshal(obj[k], &s); err != nil {
			v.add(rawField(k), "want a string")
		}
	}
	if k, ok := seen["attachments"]; ok {
		var items []json.RawMessage
		if err := json.Unmarshal(obj[k], &items); err != nil {
			v.add(rawField(k), "want a list")
		} else if len(items) != 1 {
			v.add(rawField(k), "%d items, a message carries exactly one", len(items))
		}
	}
}

// duplicateKey returns the field name of the first key an object of raw gives twice, or "".
func duplicateKey(raw RawObject) string {
	type level struct {
		field string
		keys  map[string]bool // nil for a list
		last  string          // the key whose value is being read
		index int             // the list item being read
		key   bool            // the object's next token is a key
	}
	var stack []*level
	peek := func() *level {
		if len(stack) == 0 {
			return nil
		}
		return stack[len(stack)-1]
	}
	// ended moves the enclosing object or list past the value just read.
	ended := func() {
		if top := peek(); top != nil && top.keys != nil {
			top.key = true
		} else if top != nil {
			top.index++
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	for {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		top := peek()
		if top != nil && top.keys != nil && top.key {
			if tok == json.Delim('}') {
				stack = stack[:len(stack)-1]
				ended()
				continue
			}
			k, _ := tok.(string)
			if top.keys[k] {
				return rawPath(top.field, k)
			}
			top.keys[k], top.last, top.key = true, k, false
			continue
		}
		if tok == json.Delim(']') {
			stack = stack[:len(stack)-1]
			ended()
			continue
		}
		here := "raw"
		switch {
		case top != nil && top.keys != nil:
			here = rawPath(top.field, top.last)
		case top != nil:
			here = top.field + "[" + strconv.Itoa(top.index) + "]"
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &level{field: here, keys: map[string]bool{}, key: true})
		case json.Delim('['):
			stack = append(stack, &level{field: here})
		default:
			ended()
		}
	}
}

// rawKeyNames are the camelCase names of RawMessageKeys, sorted.
func rawKeyNames() []string {
	var names []string
	for k, name := range RawMessageKeys {
		if k == name {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	return names
}

// rawContentNames are rawKeyNames without id and text.
func rawContentNames() []string {
	var names []string
	for _, k := range rawKeyNames() {
		if !rawMeta[k] {
			names = append(names, k)
		}
	}
	return names
}

// plainKeyRE matches the keys a field name writes bare: raw.replyButtonMessage.buttons[0].id.
var plainKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// rawField names a top-level key of a raw object as Validate names fields.
func rawField(k string) string { return rawPath("raw", k) }

// rawPath is the field name of key k inside the value named parent. A key that is not a plain
// identifier is quoted (raw["a.b"]), so that two different places never share a name.
func rawPath(parent, k string) string {
	if plainKeyRE.MatchString(k) {
		return parent + "." + k
	}
	return parent + "[" + strconv.Quote(k) + "]"
}

// mapRawStrings returns raw with f applied to every non-empty string value (not to keys),
// each named by its path ("raw.replyButtonMessage.buttons[0].text"), in a fixed order: keys
// sorted, lists in order. Numbers keep their text. The result is compact JSON, without HTML
// escapes, as the request body carries it.
//
// The work is bounded by MaxRawMessage twice: an object written larger is refused before
// anything is rendered (it bounds the number of strings), and rendering stops as soon as
// what the strings rendered to passes it (the result would be refused anyway).
func mapRawStrings(raw RawObject, f func(field, s string) (string, error)) (RawObject, error) {
	if n := compactLen(raw); n > MaxRawMessage {
		return nil, fmt.Errorf("raw: %d bytes as written, at most %d", n, MaxRawMessage)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("raw: %w", err)
	}
	budget := MaxRawMessage
	out, err := mapValue("raw", v, func(field, s string) (string, error) {
		r, err := f(field, s)
		if budget -= len(r); err == nil && budget < 0 {
			err = fmt.Errorf("the raw object's strings render to more than %d bytes", MaxRawMessage)
		}
		return r, err
	})
	if err != nil {
		return nil, err
	}
	b, err := EncodeJSON(out)
	if err != nil {
		return nil, fmt.Errorf("raw: %w", err)
	}
	return RawObject(b), nil
}

func mapValue(field string, v any, f func(field, s string) (string, error)) (any, error) {
	switch x := v.(type) {
	case string:
		if x == "" {
			return x, nil
		}
		s, err := f(field, x)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		if !utf8.ValidString(s) {
			return nil, fmt.Errorf("%s: not valid UTF-8", field)
		}
		return s, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			m, err := mapValue(field+"["+strconv.Itoa(i)+"]", e, f)
			if err != nil {
				return nil, err
			}
			out[i] = m
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for _, k := range slices.Sorted(maps.Keys(x)) {
			m, err := mapValue(rawPath(field, k), x[k], f)
			if err != nil {
				return nil, err
			}
			out[k] = m
		}
		return out, nil
	}
	return v, nil
}

// rawBody is the message object of the request for a raw message: raw as written, with id
// added when the caller sets SessionMessage.ID.
func rawBody(raw RawObject, id string) (json.RawMessage, error) {
	if id == "" {
		return json.RawMessage(raw), nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("connectly: raw message: %w", err)
	}
	idJSON, err := EncodeJSON(id)
	if err != nil {
		return nil, err
	}
	obj["id"] = idJSON
	b, err := EncodeJSON(obj)
	return json.RawMessage(b), err
}

// rawSets reports whether the raw object sets the field named (camelCase), in either spelling.
func rawSets(raw RawObject, name string) bool {
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil {
		return false
	}
	for k := range obj {
		if RawMessageKeys[k] == name {
			return true
		}
	}
	return false
}

// RawChoices are the reply buttons and list rows a raw message offers, read in the shapes
// reference 3.1 gives, so that on_reply rules can be checked against them.
type RawChoices struct {
	// ButtonsField and ListField name where they were read ("raw.reply_button_message"), ""
	// when the object has no such field.
	ButtonsField, ListField string
	Buttons                 *ReplyButtons
	List                    *List
	// Unread says why a field that is present could not be read in that shape; "" when both
	// were.
	Unread string
}

// Choices reads the reply buttons (replyButtonMessage.buttons[].id/text) and list rows
// (listMessage.sections[].rows[].id/text) of a raw message, in either spelling of the field.
// Inside it keys are read exactly, as a protobuf gateway reads them: a key in another case, or
// one the reference does not give at that place, makes the field unread rather than guessed.
func (r RawObject) Choices() RawChoices {
	var obj map[string]json.RawMessage
	var out RawChoices
	if json.Unmarshal(r, &obj) != nil {
		out.Unread = "raw is not a JSON object"
		return out
	}
	var unread []string
	for k, v := range obj {
		switch RawMessageKeys[k] {
		case "replyButtonMessage":
			if bs, ok := rawButtons(v); ok {
				out.ButtonsField, out.Buttons = rawField(k), &ReplyButtons{Buttons: bs}
				continue
			}
		case "listMessage":
			if ss, ok := rawSections(v); ok {
				out.ListField, out.List = rawField(k), &List{Sections: ss}
				continue
			}
		default:
			continue
		}
		unread = append(unread, rawField(k)+" is not in the shape of reference 3.1")
	}
	sort.Strings(unread)
	out.Unread = strings.Join(unread, "; ")
	return out
}

// exactObject decodes a JSON object whose keys are all among keys, spelled exactly.
func exactObject(raw json.RawMessage, keys ...string) (map[string]json.RawMessage, bool) {
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil || obj == nil {
		return nil, false
	}
	for k := range obj {
		if !slices.Contains(keys, k) {
			return nil, false
		}
	}
	return obj, true
}

// exactList decodes a JSON list of objects whose keys are all among keys.
func exactList(raw json.RawMessage, keys ...string) ([]map[string]json.RawMessage, bool) {
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		return nil, false
	}
	out := make([]map[string]json.RawMessage, len(items))
	for i, it := range items {
		obj, ok := exactObject(it, keys...)
		if !ok {
			return nil, false
		}
		out[i] = obj
	}
	return out, true
}

// exactStrings reads the fields keys of obj as strings ("" when absent); ok is false when one
// is not a string.
func exactStrings(obj map[string]json.RawMessage, keys ...string) ([]string, bool) {
	out := make([]string, len(keys))
	for i, k := range keys {
		if raw, present := obj[k]; present && json.Unmarshal(raw, &out[i]) != nil {
			return nil, false
		}
	}
	return out, true
}

// exactItems reads an object whose keys are among keys, and the list of objects under its
// field list, whose keys are among itemKeys.
func exactItems(raw json.RawMessage, list string, keys []string, itemKeys ...string) ([]map[string]json.RawMessage, bool) {
	obj, ok := exactObject(raw, keys...)
	if !ok {
		return nil, false
	}
	return exactList(obj[list], itemKeys...)
}

// rawButtons reads the buttons of a replyButtonMessage: {buttons: [{id, text}], header?, footer?}.
func rawButtons(raw json.RawMessage) ([]Button, bool) {
	items, ok := exactItems(raw, "buttons", []string{"buttons", "header", "footer"}, "id", "text")
	if !ok {
		return nil, false
	}
	bs := make([]Button, len(items))
	for i, it := range items {
		v, ok := exactStrings(it, "id", "text")
		if !ok {
			return nil, false
		}
		bs[i] = Button{ID: v[0], Text: v[1]}
	}
	return bs, true
}

// rawSections reads the sections of a listMessage: {button, sections: [{title?, rows: [{id,
// text, description?}]}], header?, footer?}.
func rawSections(raw json.RawMessage) ([]Section, bool) {
	secs, ok := exactItems(raw, "sections", []string{"button", "sections", "header", "footer"}, "title", "rows")
	if !ok {
		return nil, false
	}
	out := make([]Section, len(secs))
	for i, sec := range secs {
		title, ok := exactStrings(sec, "title")
		rows, ok2 := exactList(sec["rows"], "id", "text", "description")
		if !ok || !ok2 {
			return nil, false
		}
		out[i].Title = title[0]
		for _, r := range rows {
			v, ok := exactStrings(r, "id", "text", "description")
			if !ok {
				return nil, false
			}
			out[i].Rows = append(out[i].Rows, Row{ID: v[0], Text: v[1], Description: v[2]})
		}
	}
	return out, true
}
