package fakeconnectly

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// decodeSend decodes a send body strictly: one JSON object, no unknown fields (names are
// matched exactly, see misnamedKey), no trailing data.
func decodeSend(raw []byte) (TemplateMessage, *apiError) {
	var msg TemplateMessage
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 {
		return msg, invalid(CodeTemplateInputInvalid, "invalid request body: body is empty")
	}
	if trimmed[0] != '{' {
		return msg, invalid(CodeTemplateInputInvalid, "invalid request body: body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&msg); err != nil {
		return TemplateMessage{}, invalid(CodeTemplateInputInvalid, "invalid request body: "+strings.TrimPrefix(err.Error(), "json: "))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return TemplateMessage{}, invalid(CodeTemplateInputInvalid, "invalid request body: unexpected data after the JSON object")
	}
	if k := misnamed(trimmed, msg); k != "" {
		return TemplateMessage{}, invalid(CodeTemplateInputInvalid, fmt.Sprintf("invalid request body: unknown field %q", k))
	}
	return msg, nil
}

// decodeLoose decodes what it can of a body, for the record of a send refused before
// validation (401, 404, 429).
func decodeLoose(raw []byte) TemplateMessage {
	var msg TemplateMessage
	if json.Unmarshal(raw, &msg) != nil {
		return TemplateMessage{}
	}
	return msg
}

// misnamed returns the first key of body, a JSON object that decoded strictly into v, whose
// spelling is not exactly the name of the field it filled, or "" when there is none.
func misnamed(body []byte, v any) string {
	var tree any
	if json.Unmarshal(body, &tree) != nil {
		return ""
	}
	return misnamedKey(tree, reflect.TypeOf(v))
}

// rawMessageType is the type of the fields whose values the fake keeps as sent.
var rawMessageType = reflect.TypeFor[json.RawMessage]()

// locationType is the type of a session message's location, whose field list the
// reference leaves open.
var locationType = reflect.TypeFor[Location]()

// misnamedKey returns the first key (in sorted order at each level) of the decoded JSON
// value v that names a field of t only when case is ignored, "TemplateName" for
// templateName, or "" when there is none. The reference spells every field one way, but
// encoding/json, even with DisallowUnknownFields, matches names without regard to case, so
// a client field left without its JSON name would pass. The values of raw fields
// (callbackData, products) are not looked into.
func misnamedKey(v any, t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == locationType {
		return "" // Location reads its own names exactly (Location.UnmarshalJSON)
	}
	switch v := v.(type) {
	case []any:
		if t.Kind() != reflect.Slice || t == rawMessageType {
			return ""
		}
		for _, e := range v {
			if k := misnamedKey(e, t.Elem()); k != "" {
				return k
			}
		}
	case map[string]any:
		if t.Kind() != reflect.Struct {
			return ""
		}
		for _, k := range slices.Sorted(maps.Keys(v)) {
			f, ok := fieldNamed(t, k)
			if !ok {
				return k
			}
			if inner := misnamedKey(v[k], f.Type); inner != "" {
				return inner
			}
		}
	}
	return ""
}

// fieldNamed returns the field of struct type t whose JSON name is exactly name.
func fieldNamed(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); tag == name && tag != "-" {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// validE164 reports whether s is "+" followed by 8 to 15 digits, the first not zero.
func validE164(s string) bool {
	if len(s) < 9 || len(s) > 16 || s[0] != '+' || s[1] == '0' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// validBSUID reports whether s is "bsuid:" followed by an ISO 3166 alpha-2 country code, a
// dot and one or more ASCII letters or digits (reference section 6).
func validBSUID(s string) bool {
	rest, ok := strings.CutPrefix(s, "bsuid:")
	if !ok || len(rest) < 4 || rest[2] != '.' {
		return false
	}
	for i := 0; i < 2; i++ {
		if rest[i] < 'A' || rest[i] > 'Z' {
			return false
		}
	}
	for i := 3; i < len(rest); i++ {
		c := rest[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// paramKind is what a known parameter key holds.
type paramKind int

const (
	paramUnknown paramKind = iota
	paramText              // header_text, body_N: text with WhatsApp's whitespace rules
	paramMedia             // header_image, header_video, header_document: absolute http(s) URL
	paramButton            // button_N_url: a URL or a URL suffix
	paramLenient           // raw_*, carousel card and quick-reply keys: names not documented
)

func kindOf(name string) paramKind {
	switch name {
	case "header_text":
		return paramText
	case "header_image", "header_video", "header_document":
		return paramMedia
	case "button_1_url", "button_2_url":
		return paramButton
	}
	if n, ok := strings.CutPrefix(name, "body_"); ok {
		if i, err := strconv.Atoi(n); err == nil && i >= 1 && i <= 15 && strconv.Itoa(i) == n {
			return paramText
		}
	}
	if strings.HasPrefix(name, "raw_") || strings.Contains(name, "card") || strings.Contains(name, "quick_reply") {
		return paramLenient
	}
	return paramUnknown
}

// validateParam checks one parameter; i is its index, for the message. What it refuses by
// default the reference states: a key it does not list (2.2), an empty value and a media
// URL that is not an absolute URL ("a single bad value (empty var, bad URL)", 4.3 #6), a
// button URL with whitespace (2.2: "the value must be a valid URL", or a suffix of one).
// strict adds what it does not (Strict).
func validateParam(i int, p Parameter, strict Strict) *apiError {
	if p.Name == "" {
		return invalid(CodeTemplateInputInvalid, fmt.Sprintf("parameters[%d].name is empty", i))
	}
	kind := kindOf(p.Name)
	switch kind {
	case paramUnknown:
		return invalid(CodeTemplateInputInvalid, fmt.Sprintf("parameters[%d].name %q is not a template parameter key", i, p.Name))
	case paramLenient:
		return nil
	}
	if strings.TrimSpace(p.Value) == "" {
		return invalid(CodeTemplateInputInvalid, fmt.Sprintf("parameter %s has an empty value", p.Name))
	}
	switch kind {
	case paramMedia:
		u, err := url.Parse(p.Value)
		switch {
		case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
			return invalid(CodeTemplateInputInvalid, fmt.Sprintf("parameter %s must be an absolute http(s) URL, got %q", p.Name, p.Value))
		case strict.HTTPSMedia && u.Scheme != "https":
			return invalid(CodeTemplateInputInvalid, fmt.Sprintf("parameter %s must be an absolute https URL, got %q", p.Name, p.Value))
		}
	case paramText:
		if !strict.TextWhitespace {
			break
		}
		switch {
		case strings.ContainsAny(p.Value, "\n\r"):
			return invalid(CodeTemplateInputInvalid, fmt.Sprintf("parameter %s contains a new-line character", p.Name))
		case strings.Contains(p.Value, "\t"):
			return invalid(CodeTemplateInputInvalid, fmt.Sprintf("parameter %s contains a tab character", p.Name))
		case strings.Contains(p.Value, "     "):
			return invalid(CodeTemplateInputInvalid, fmt.Sprintf("parameter %s contains more than 4 consecutive spaces", p.Name))
		}
	case paramButton:
		if strings.ContainsAny(p.Value, " \t\r\n") {
			return invalid(CodeTemplateInputInvalid, fmt.Sprintf("parameter %s must be a URL or URL suffix without whitespace", p.Name))
		}
	}
	return nil
}

// validate checks a decoded send against the documented rules, in the order the fake
// reports them: number, sender, templateName, language, parameters, callbackData, template,
// and the parameters against the template when the fake knows it (checkParams). It returns
// the template (nil when the fake takes any name).
func (s *Server) validate(msg *TemplateMessage) (*Template, *apiError) {
	switch {
	case msg.Number == "":
		return nil, invalid(CodePhoneNumberBadFormat, "number is required")
	case !validE164(s.normalizeNumber(msg.Number)) && !validBSUID(msg.Number):
		return nil, invalid(CodePhoneNumberBadFormat, fmt.Sprintf("number %q is neither E.164 (+ and 8 to 15 digits) nor bsuid:<CC>.<id>", msg.Number))
	}
	if e := s.validateSender(msg); e != nil {
		return nil, e
	}
	// lang is the translation the send names, or Config.DefaultLanguage when it names none.
	lang := cmp.Or(msg.Language, s.defaultLanguage)
	switch {
	case msg.TemplateName == "":
		return nil, invalid(CodeTemplateInputInvalid, "templateName is required")
	case lang == "":
		return nil, invalid(CodeTemplateInputInvalid, "language is required")
	}
	seen := make(map[string]struct{}, len(msg.Parameters))
	for i, p := range msg.Parameters {
		if e := validateParam(i, p, s.strict); e != nil {
			return nil, e
		}
		if _, dup := seen[p.Name]; dup && s.strict.DuplicateParams {
			return nil, invalid(CodeTemplateInputInvalid, fmt.Sprintf("parameter %s is given more than once", p.Name))
		}
		seen[p.Name] = struct{}{}
	}
	if len(msg.CallbackData) > maxCallbackBytes {
		return nil, invalid(CodeTemplateInputInvalid, fmt.Sprintf("callbackData is %d bytes, the limit is %d", len(msg.CallbackData), maxCallbackBytes))
	}
	tmpl, ok := s.lookupTemplate(msg.TemplateName, lang)
	switch {
	case !ok:
		return nil, invalid(CodeTemplateNotFound, fmt.Sprintf("no template %q in language %q", msg.TemplateName, lang))
	case tmpl != nil && tmpl.Status != TemplateApproved:
		return nil, invalid(CodeTemplateNotFound, fmt.Sprintf("template %q in language %q is %s, not approved", msg.TemplateName, lang, tmpl.Status))
	case tmpl != nil:
		if e := checkParams(*tmpl, msg.Parameters); e != nil {
			return nil, e
		}
	}
	return tmpl, nil
}

// validateSender checks the optional sender: E.164, one of Config.Senders when those are
// set, required when the business has several, and not the recipient.
func (s *Server) validateSender(msg *TemplateMessage) *apiError {
	return s.checkSender(msg.Sender, s.normalizeNumber(msg.Number), "sender")
}

// checkSender checks a sender number (empty when none is given) against the recipient;
// field names it in the messages ("sender", or "sender.id" for a session send).
func (s *Server) checkSender(sender, recipient, field string) *apiError {
	if sender == "" {
		if len(s.senders) > 1 {
			return invalid(CodeInvalidSenderID, field+" is required: the business has more than one WhatsApp number")
		}
		return nil
	}
	if !validE164(sender) {
		return invalid(CodeInvalidSenderID, fmt.Sprintf("%s %q is not an E.164 number", field, sender))
	}
	if len(s.senders) > 0 {
		if _, ok := s.senders[sender]; !ok {
			return invalid(CodeInvalidSenderID, fmt.Sprintf("%s %s is not a WhatsApp number of this business", field, sender))
		}
	}
	if sender == recipient {
		return invalid(CodeSelfInvalid, "the recipient is the sender")
	}
	return nil
}

// choice is the names a string setting takes besides "", which means its default.
type choice []string

// The settings that take one of a few names.
var (
	sendKinds       = choice{KindTemplate, KindSession}                         // Rule.Kind, Reply.Kind
	bodyShapes      = choice{BodyError, BodyEmpty, BodyGateway, BodyGRPC}       // Rule.Body
	rateLimitBodies = choice{BodyError, BodyEmpty}                              // Config.RateLimitBody
	ruleEndpoints   = choice{EndpointSend, EndpointWebhooks, EndpointTemplates} // Rule.Endpoint
	windowAnswers   = choice(slices.Clone(WindowAnswers))                       // Config.WindowAnswer
)

// allows reports whether v is "" or one of c's names.
func (c choice) allows(v string) bool { return v == "" || slices.Contains(c, v) }

// String lists c's names as "a, b or c".
func (c choice) String() string {
	if len(c) < 2 {
		return strings.Join(c, "")
	}
	return strings.Join(c[:len(c)-1], ", ") + " or " + c[len(c)-1]
}
