package fakeconnectly

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Template is one template translation that exists on the fake business.
type Template struct {
	Name     string `json:"name"`
	Language string `json:"language"`
	// Status is a MESSAGE_TEMPLATE_STATUS_* value; empty means TemplateApproved. Only
	// approved templates can be sent.
	Status string `json:"status,omitempty"`
	// Category is the template's category (reference 7): MARKETING, UTILITY or
	// AUTHENTICATION, with or without the create call's MESSAGE_TEMPLATE_GROUP_CATEGORY_
	// prefix, or any other value Meta uses (the listing example shows ACCOUNT_UPDATE). Empty
	// means MARKETING. The listing shows it without the prefix, as its examples do.
	Category string `json:"category,omitempty"`
	// Header is the header format: "", TEXT, IMAGE, VIDEO or DOCUMENT.
	Header string `json:"header,omitempty"`
	// HeaderText is the text of a TEXT header, with its one variable if any ("Hi {{1}}");
	// empty means "{{1}}".
	HeaderText string `json:"headerText,omitempty"`
	// Body is the body text with its variables, e.g. "Hi {{1}}, order {{2}} shipped." When
	// it is set the fake knows the whole template (header, body) and a send's parameters
	// must match it (reference 2.2, 4.3 and 9.2's 132000): a body_N for each {{N}} of the
	// body and no other, header_text only for a header with a variable, and a header media
	// key only for a header of that media. When it is empty any parameters are taken.
	Body string `json:"body,omitempty"`
	// Footer is the footer text, shown in the listing only.
	Footer string `json:"footer,omitempty"`
	// Buttons are the template's buttons, in order, as the listing shows them in Meta's raw
	// object: one BUTTONS component after the body and footer whose buttons are these
	// objects (reference 7, externalTemplate.whatsapp.components[].buttons). Shown in the
	// listing only: a send's button parameters are not checked against them.
	Buttons []TemplateButton `json:"buttons,omitempty"`
	// MetaStatus is Meta's raw status the listing shows in externalTemplate.whatsapp.status
	// (reference 7: PAUSED or DISABLED for a template Meta stopped for low quality, inferred);
	// empty means Status without its prefix. It changes only the listing: a send is
	// answered by Status, and fails later only with DeliveryFailure.
	MetaStatus string `json:"metaStatus,omitempty"`
	// DeliveryFailure, when set, is the error code every message sent with this template
	// fails with at delivery: the send is accepted (200 {"id"}) and its delivery_status
	// events are sent, then delivery_failed with this code instead of delivered and read
	// (reference 7: sends using a deleted template "fail at delivery"; 10.14: what a send to
	// a template Meta paused gives is not documented, e.g. ERROR_CODE_UNSPECIFIED with
	// DeliveryDetails {"metaCode": 132015}). It takes precedence over WebhookConfig.Fates.
	// Empty: the fates decide, as for any message.
	DeliveryFailure string `json:"deliveryFailure,omitempty"`
	// DeliveryType, DeliveryMessage, DeliveryNumericCode, DeliveryDetails and DeliveryOmit
	// are the rest of DeliveryFailure's error, as a Fate's Type, Message, NumericCode,
	// Details and Omit are (and a Rule's on a send: reference 4.1, one shape for both): the
	// type and message in place of the code's, the code as a JSON number (a Meta code such
	// as "132015"), the details object or null (empty means {}), and the fields left out.
	DeliveryType        string          `json:"deliveryType,omitempty"`
	DeliveryMessage     string          `json:"deliveryMessage,omitempty"`
	DeliveryNumericCode bool            `json:"deliveryNumericCode,omitempty"`
	DeliveryDetails     json.RawMessage `json:"deliveryDetails,omitempty"`
	DeliveryOmit        []string        `json:"deliveryOmit,omitempty"`
}

// TemplateButton is one button of a template, as Meta's raw template object lists it in
// get/templates (reference 7: externalTemplate.whatsapp is "Meta's raw object", whose
// components each carry a buttons list). The reference shows only empty lists; the fields of
// a button are Meta's (type and text, a URL button's url, a phone button's number, an
// example for a URL with a variable), spelled in camelCase as the rest of that object is
// (headerText, lastUpdatedTime, rejectedReason) (inferred). The listing shows a button as
// given here, fields left empty left out.
type TemplateButton struct {
	// Type is Meta's button type: QUICK_REPLY, URL, PHONE_NUMBER, COPY_CODE... Required.
	Type string `json:"type"`
	// Text is the button's label, the text a tap on a QUICK_REPLY button sends back.
	// Required.
	Text string `json:"text"`
	// URL is a URL button's address, with its one variable if any
	// ("https://shop.example.com/{{1}}").
	URL string `json:"url,omitempty"`
	// PhoneNumber is a PHONE_NUMBER button's number.
	PhoneNumber string `json:"phoneNumber,omitempty"`
	// Example is the example value of a URL button's variable.
	Example []string `json:"example,omitempty"`
}

// deliveryFields are the fields of DeliveryFailure's error beside the code.
func (t Template) deliveryFields() errorParts {
	return errorParts{Type: t.DeliveryType, Message: t.DeliveryMessage, NumericCode: t.DeliveryNumericCode, Details: t.DeliveryDetails,
		Omit: t.DeliveryOmit}
}

// deliveryError is the error of the delivery_failed event of the template's messages
// (DeliveryFailure).
func (t Template) deliveryError() apiError {
	return deliveryError(t.DeliveryFailure, t.deliveryFields())
}

// Template categories of reference 7, as the listing shows them.
const (
	CategoryMarketing      = "MARKETING"
	CategoryUtility        = "UTILITY"
	CategoryAuthentication = "AUTHENTICATION"
)

// categoryPrefix is the create call's spelling of a category (reference 7).
const categoryPrefix = "MESSAGE_TEMPLATE_GROUP_CATEGORY_"

// category is the template's category as the listing shows it.
func (t Template) category() string {
	if t.Category == "" {
		return CategoryMarketing
	}
	return strings.TrimPrefix(t.Category, categoryPrefix)
}

// known reports whether the fake knows the whole template, and so checks a send's
// parameters against it.
func (t Template) known() bool { return t.Body != "" }

// headerText is the text of a TEXT header.
func (t Template) headerText() string {
	if t.HeaderText == "" {
		return "{{1}}"
	}
	return t.HeaderText
}

// placeholder is a template variable, {{N}} (reference 2.2 and 7).
var placeholder = regexp.MustCompile(`\{\{\s*([0-9]+)\s*\}\}`)

// variables returns the numbers of the {{N}} variables of text, sorted, each once.
func variables(text string) []int {
	var out []int
	for _, m := range placeholder.FindAllStringSubmatch(text, -1) {
		if n, err := strconv.Atoi(m[1]); err == nil && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// headerMedia is the header format a header media parameter key fills.
var headerMedia = map[string]string{"header_image": "IMAGE", "header_video": "VIDEO", "header_document": "DOCUMENT"}

// checkParams checks a send's parameters against a template the fake knows (Body set): every
// {{N}} of the body needs its body_N and a body_N needs its {{N}}; header_text needs a TEXT
// header with a variable (and such a header needs it); header_image, header_video and
// header_document need a header of that media. A mismatch is the documented
// ERROR_CODE_MESSAGE_TEMPLATE_INPUT_INVALID, "template inputs (parameters) invalid" (4.3 #6),
// with ERROR_TYPE_INVALID_REQUEST (4.2) and HTTP 400 (2.4: "400 validation errors"); Meta's
// side of it is 132000, "template param count mismatch" (9.2). (inferred) A media header
// with no media parameter is taken: the reference does not say one is required, and the
// template's example media may be used. Button keys, carousel and quick-reply keys are not
// checked, even for a template given its Buttons: the reference does not say how they
// number a template's buttons (10, item 7).
func checkParams(t Template, params []Parameter) *apiError {
	if !t.known() {
		return nil
	}
	bad := func(format string, a ...any) *apiError {
		return invalid(CodeTemplateInputInvalid, fmt.Sprintf("template %q (%s): ", t.Name, t.Language)+fmt.Sprintf(format, a...))
	}
	headerVars := 0
	if t.Header == "TEXT" {
		headerVars = len(variables(t.headerText()))
	}
	want := variables(t.Body)
	var got []int
	headerText := false
	for _, p := range params {
		if n, ok := bodyIndex(p.Name); ok {
			if !slices.Contains(got, n) {
				got = append(got, n)
			}
			continue
		}
		switch p.Name {
		case "header_text":
			if headerVars == 0 {
				return bad("parameter header_text: the template's header has no variable")
			}
			headerText = true
		case "header_image", "header_video", "header_document":
			if t.Header != headerMedia[p.Name] {
				return bad("parameter %s: the template has no %s header", p.Name, strings.ToLower(headerMedia[p.Name]))
			}
		}
	}
	for _, n := range want {
		if !slices.Contains(got, n) {
			return bad("parameter body_%d is missing: the body has {{%d}}", n, n)
		}
	}
	slices.Sort(got)
	for _, n := range got {
		if !slices.Contains(want, n) {
			return bad("parameter body_%d: the body has no {{%d}}", n, n)
		}
	}
	if headerVars > 0 && !headerText {
		return bad("parameter header_text is missing: the header has a variable")
	}
	return nil
}

// bodyIndex returns N of a body_N parameter key.
func bodyIndex(name string) (int, bool) {
	n, ok := strings.CutPrefix(name, "body_")
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(n)
	if err != nil || i < 1 || i > 15 || strconv.Itoa(i) != n {
		return 0, false
	}
	return i, true
}

// render is the template's body with the parameters filled in, for an echo event.
func (t Template) render(params []Parameter) string {
	values := map[int]string{}
	for _, p := range params {
		if n, ok := bodyIndex(p.Name); ok {
			values[n] = p.Value
		}
	}
	return placeholder.ReplaceAllStringFunc(t.Body, func(m string) string {
		n, _ := strconv.Atoi(placeholder.FindStringSubmatch(m)[1])
		if v, ok := values[n]; ok {
			return v
		}
		return m
	})
}

// templateKey names one translation.
type templateKey struct{ name, language string }

// lookupTemplate returns the template a send names. ok is false when it does not exist
// (never configured, or deleted); t is nil when the fake has no configured templates and
// takes any name (anyTemplate).
func (s *Server) lookupTemplate(name, language string) (t *Template, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.deletedTemplates[name] {
		return nil, false
	}
	if s.anyTemplate {
		return nil, true
	}
	i, ok := s.templateIndex[templateKey{name, language}]
	if !ok {
		return nil, false
	}
	tm := s.tmplList[i]
	return &tm, true
}

// indexTemplatesLocked rebuilds the index of s.tmplList. The caller holds s.mu.
func (s *Server) indexTemplatesLocked() {
	s.templateIndex = make(map[templateKey]int, len(s.tmplList))
	for i, t := range s.tmplList {
		s.templateIndex[templateKey{t.Name, t.Language}] = i
	}
}

// templatesResponse is the answer of get/templates (reference 7): template groups by name,
// each with its translations, in the documented shape: Connectly's own fields (channel, id,
// language, status, createdAt, updatedAt, rejectionReason, components, templateComponents)
// and Meta's raw object under externalTemplate.whatsapp.
type templatesResponse struct {
	Entity struct {
		TemplateGroups []templateGroup `json:"templateGroups"`
	} `json:"entity"`
}

type templateGroup struct {
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Category  string          `json:"category"`
	Templates []templateEntry `json:"templates"`
}

type templateChannel struct {
	ID          string `json:"id"`
	ExternalID  string `json:"externalId"`
	ChannelType string `json:"channelType"`
}

type templateEntry struct {
	Channel  templateChannel `json:"channel"`
	ID       string          `json:"id"`
	Language struct {
		Code string `json:"code"`
	} `json:"language"`
	Status    string `json:"status"`
	CreatedAt string `json:"createdAt"`
	UpdatedAt string `json:"updatedAt"`
	// RejectionReason is null unless the translation was rejected.
	RejectionReason    *string           `json:"rejectionReason"`
	ExternalTemplate   *externalTemplate `json:"externalTemplate,omitempty"`
	Components         []any             `json:"components"`
	TemplateComponents []any             `json:"templateComponents"`
}

// externalTemplate carries Meta's raw template object, as the listing documents.
type externalTemplate struct {
	WhatsApp struct {
		ID              string      `json:"id"`
		Name            string      `json:"name"`
		Language        string      `json:"language"`
		Status          string      `json:"status"`
		Category        string      `json:"category"`
		Components      []component `json:"components"`
		LastUpdatedTime string      `json:"lastUpdatedTime"`
		RejectedReason  string      `json:"rejectedReason"`
		QualityScore    struct {
			Score string `json:"score"`
		} `json:"qualityScore"`
	} `json:"whatsapp"`
}

// component is one of Meta's template components: text is null when the component has none,
// as in the documented example.
type component struct {
	Type    string            `json:"type"`
	Format  string            `json:"format,omitempty"`
	Text    *string           `json:"text"`
	Buttons []TemplateButton  `json:"buttons"`
	Example *componentExample `json:"example,omitempty"`
}

type componentExample struct {
	HeaderText   []string `json:"headerText"`
	HeaderHandle []string `json:"headerHandle"`
	BodyText     []string `json:"bodyText"`
}

// Connectly's own template components (templateComponents), in the create call's shapes
// (reference 7): {"header": {"media": {"type": "TYPE_IMAGE", "example": [url]}}}, {"body":
// {"text": {"text": ..., "example": [...]}}}, {"footer": {"text": {"text": ...}}}. (inferred)
// A TEXT header is written like the body, {"header": {"text": {"text": ..., "example":
// [...]}}}: the reference names TYPE_TEXT but shows no text header.
type connectlyComponent struct {
	Header *connectlyHeader `json:"header,omitempty"`
	Body   *connectlyText   `json:"body,omitempty"`
	Footer *connectlyText   `json:"footer,omitempty"`
}

type connectlyHeader struct {
	Media *connectlyMedia    `json:"media,omitempty"`
	Text  *connectlyTextBody `json:"text,omitempty"`
}

type connectlyMedia struct {
	Type    string   `json:"type"`
	Example []string `json:"example"`
}

type connectlyText struct {
	Text connectlyTextBody `json:"text"`
}

type connectlyTextBody struct {
	Text    string   `json:"text"`
	Example []string `json:"example,omitempty"`
}

// examples is one example value per variable of text, as a create call would give.
func examples(text string) []string {
	vars := variables(text)
	if len(vars) == 0 {
		return nil
	}
	out := make([]string, len(vars))
	for i, n := range vars {
		out[i] = "example " + strconv.Itoa(n)
	}
	return out
}

// exampleMedia is the example URL of a media header in the listing.
const exampleMedia = "https://example.com/header"

// components returns the template's components in both forms: Meta's (externalTemplate)
// and Connectly's (templateComponents). Buttons appear in Meta's form only, as a BUTTONS
// component: the reference gives no shape for a button in Connectly's form ("Button
// component shape for create was not available").
func (t Template) components() ([]component, []any) {
	meta, own := []component{}, []any{}
	if t.Header != "" {
		c := component{Type: "HEADER", Format: t.Header, Buttons: []TemplateButton{},
			Example: &componentExample{HeaderText: []string{}, HeaderHandle: []string{}, BodyText: []string{}}}
		if t.Header == "TEXT" {
			text := t.headerText()
			c.Text = &text
			if ex := examples(text); ex != nil {
				c.Example.HeaderText = ex
			}
			own = append(own, connectlyComponent{Header: &connectlyHeader{Text: &connectlyTextBody{Text: text, Example: examples(text)}}})
		} else {
			c.Example.HeaderHandle = []string{exampleMedia}
			own = append(own, connectlyComponent{Header: &connectlyHeader{Media: &connectlyMedia{Type: "TYPE_" + t.Header, Example: []string{exampleMedia}}}})
		}
		meta = append(meta, c)
	}
	if t.Body != "" {
		body := t.Body
		c := component{Type: "BODY", Text: &body, Buttons: []TemplateButton{}}
		if ex := examples(body); ex != nil {
			c.Example = &componentExample{HeaderText: []string{}, HeaderHandle: []string{}, BodyText: ex}
		}
		meta = append(meta, c)
		own = append(own, connectlyComponent{Body: &connectlyText{Text: connectlyTextBody{Text: body, Example: examples(body)}}})
	}
	if t.Footer != "" {
		footer := t.Footer
		meta = append(meta, component{Type: "FOOTER", Text: &footer, Buttons: []TemplateButton{}})
		own = append(own, connectlyComponent{Footer: &connectlyText{Text: connectlyTextBody{Text: footer}}})
	}
	if len(t.Buttons) > 0 {
		meta = append(meta, component{Type: "BUTTONS", Buttons: slices.Clone(t.Buttons)})
	}
	return meta, own
}

// templateTime is the fixed creation and update time of the fake's templates.
const templateTime = "2026-01-05T10:00:00Z"

// templateChannelID is the fake WhatsApp channel's id (a UUID) and Meta phone-number id.
const templateChannelID, templatePhoneID = "5b2f8c1e-3d4a-4e6f-9a7b-1c2d3e4f5a6b", "109876543210987"

// handleTemplates answers POST /v1/businesses/{businessId}/get/templates: every configured
// translation that was not deleted, whatever its status, so that the listing and the send
// endpoint agree: a translation listed MESSAGE_TEMPLATE_STATUS_APPROVED is one a send may
// name, and every other name and language a send names is refused
// ERROR_CODE_MESSAGE_TEMPLATE_NOT_FOUND. A fake with no configured templates takes any
// template name and language on a send (Config.Templates); it cannot list "any name", so
// its listing is empty ({"entity": {"templateGroups": []}}), the answer of a business that
// has created no template: a client must not take the listing as the list of what it may
// send to such a fake.
func (s *Server) handleTemplates(w http.ResponseWriter, r *http.Request, business string) {
	_, _ = io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, maxBody))
	if s.refuseCaller(w, r, business) || s.manage(w, r, EndpointTemplates) {
		return
	}
	s.mu.Lock()
	list := slices.Clone(s.tmplList)
	s.mu.Unlock()
	var resp templatesResponse
	resp.Entity.TemplateGroups = []templateGroup{}
	index := make(map[string]int)
	// A group has one category (the create call gives it, reference 7): the first one a
	// translation of the name sets, MARKETING when none does.
	categories := map[string]string{}
	for _, t := range slices.Backward(list) {
		if t.Category != "" || categories[t.Name] == "" {
			categories[t.Name] = t.category()
		}
	}
	for _, t := range list {
		i, ok := index[t.Name]
		if !ok {
			i = len(resp.Entity.TemplateGroups)
			index[t.Name] = i
			resp.Entity.TemplateGroups = append(resp.Entity.TemplateGroups, templateGroup{
				ID: t.Name, Name: t.Name, Category: categories[t.Name], Templates: []templateEntry{},
			})
		}
		meta, own := t.components()
		e := templateEntry{
			Channel: templateChannel{ID: templateChannelID, ExternalID: templatePhoneID, ChannelType: "CHANNEL_TYPE_WHATSAPP_CLOUD"},
			ID:      templateID(t), Status: t.Status, CreatedAt: templateTime, UpdatedAt: templateTime,
			Components: []any{}, TemplateComponents: own,
		}
		e.Language.Code = t.Language
		ext := &externalTemplate{}
		ext.WhatsApp.ID, ext.WhatsApp.Name, ext.WhatsApp.Language = e.ID, t.Name, t.Language
		ext.WhatsApp.Category, ext.WhatsApp.LastUpdatedTime = categories[t.Name], templateTime
		ext.WhatsApp.Status = strings.TrimPrefix(t.Status, "MESSAGE_TEMPLATE_STATUS_")
		if t.MetaStatus != "" {
			ext.WhatsApp.Status = t.MetaStatus
		}
		ext.WhatsApp.RejectedReason, ext.WhatsApp.QualityScore.Score = "NONE", "UNKNOWN"
		if t.Status == TemplateRejected {
			reason := "INVALID_FORMAT"
			e.RejectionReason, ext.WhatsApp.RejectedReason = &reason, reason
		}
		ext.WhatsApp.Components = meta
		e.ExternalTemplate = ext
		g := &resp.Entity.TemplateGroups[i]
		g.Templates = append(g.Templates, e)
	}
	writeJSON(w, http.StatusOK, resp)
}

// templateID is a stable numeric id for a template translation, shaped like Meta's.
func templateID(t Template) string {
	h := fnv.New64a()
	h.Write([]byte(t.Name))
	h.Write([]byte{0})
	h.Write([]byte(t.Language))
	return strconv.FormatUint(1e15+h.Sum64()%9e15, 10)
}

// handleDeleteTemplate answers DELETE /v1/businesses/{businessId}/templates/{name}
// (reference 7): it removes every language of the template, answers 200 {} whether or not
// the template existed (idempotent), and from then on a send naming it is refused
// ERROR_CODE_MESSAGE_TEMPLATE_NOT_FOUND, also on a fake that takes any name. Messages
// already sent with it whose delivery is still ahead (their delivered and read events not
// yet sent) "fail at delivery": delivery_failed with Config.DeletedTemplateFailure.
func (s *Server) handleDeleteTemplate(w http.ResponseWriter, r *http.Request, business, escName string) {
	_, _ = io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, maxBody))
	if s.refuseCaller(w, r, business) || s.manage(w, r, EndpointTemplates) {
		return
	}
	name, err := url.PathUnescape(escName)
	if err != nil || name == "" || strings.Contains(name, "/") {
		s.writeError(w, apiError{Status: http.StatusNotFound, Message: "Not Found"})
		return
	}
	s.DeleteTemplate(name)
	writeJSON(w, http.StatusOK, struct{}{})
}

// SetTemplates replaces the business's templates (Config.Templates; none: a send may name
// any template) and forgets the names deleted through the API. It returns an error, and
// changes nothing, when a template has no name or language, is listed twice, or has
// delivery details that are not a JSON object. Messages already sent keep the template
// they were sent with.
func (s *Server) SetTemplates(list []Template) error {
	list, err := checkTemplates(list)
	if err != nil {
		return fmt.Errorf("fakeconnectly: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tmplList, s.anyTemplate, s.deletedTemplates = list, len(list) == 0, map[string]bool{}
	s.indexTemplatesLocked()
	return nil
}

// Templates returns a copy of the business's templates, as get/templates lists them (the
// deleted ones gone), Status filled in.
func (s *Server) Templates() []Template {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.tmplList)
	if out == nil {
		out = []Template{}
	}
	return out
}

// checkTemplates validates a list of templates and returns it with each Status filled in.
func checkTemplates(in []Template) ([]Template, error) {
	var out []Template
	for _, t := range in {
		if t.Name == "" || t.Language == "" {
			return nil, fmt.Errorf("template %+v needs a name and a language", t)
		}
		if t.Status == "" {
			t.Status = TemplateApproved
		}
		if slices.ContainsFunc(out, func(o Template) bool { return o.Name == t.Name && o.Language == t.Language }) {
			return nil, fmt.Errorf("template %s/%s listed twice", t.Name, t.Language)
		}
		f := t.deliveryFields()
		if (f.Type != "" || f.Message != "" || f.NumericCode || len(f.Omit) > 0) && t.DeliveryFailure == "" {
			return nil, fmt.Errorf("template %s/%s: deliveryType, deliveryMessage, deliveryNumericCode and deliveryOmit need a deliveryFailure", t.Name, t.Language)
		}
		if err := f.validate(t.DeliveryFailure); err != nil {
			return nil, fmt.Errorf("template %s/%s: delivery %w", t.Name, t.Language, err)
		}
		t.Buttons = slices.Clone(t.Buttons)
		for i, b := range t.Buttons {
			if b.Type == "" || b.Text == "" {
				return nil, fmt.Errorf("template %s/%s: button %d needs a type and a text", t.Name, t.Language, i+1)
			}
		}
		out = append(out, t)
	}
	return out, nil
}

// DeleteTemplate does what DELETE …/templates/{name} does (see handleDeleteTemplate).
func (s *Server) DeleteTemplate(name string) {
	s.mu.Lock()
	s.deletedTemplates[name] = true
	s.tmplList = slices.DeleteFunc(s.tmplList, func(t Template) bool { return t.Name == name })
	s.indexTemplatesLocked()
	hooks := s.hooks
	s.mu.Unlock()
	if hooks != nil {
		hooks.failTemplate(name, deliveryError(s.deletedFailure, errorParts{}))
	}
}
