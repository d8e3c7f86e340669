package connectly

import (
	"bytes"
	"encoding/json"
)

// Parameter is one template variable: header_text, header_image, header_video, header_document,
// body_1..body_15, button_1_url, button_2_url, or a raw name the caller passes through.
type Parameter struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// TemplateMessage is the JSON body of a template send. Field names and shapes follow the
// provider reference section 2.1 exactly.
type TemplateMessage struct {
	// Number is the recipient: E.164 ("+16502223333") or a BSUID in the prefixed form
	// "bsuid:US.13491208655302741918".
	Number       string `json:"number"`
	TemplateName string `json:"templateName"`
	Language     string `json:"language"`
	// Parameters is always sent, as [] when empty, like the provider's own example.
	Parameters []Parameter `json:"parameters"`
	// Sender is the business number in E.164; optional when the business has one number.
	Sender string `json:"sender,omitempty"`
	// CallbackData is echoed back on webhook events for this message; at most 1,024 bytes.
	CallbackData json.RawMessage `json:"callbackData,omitempty"`
	// CampaignName is the campaign the send belongs to; it goes out only when the client's
	// Wire.CampaignName says so (the encoders clear it otherwise).
	CampaignName string `json:"campaignName,omitempty"`
}

// MaxCallbackData is the documented size limit of callbackData in bytes.
const MaxCallbackData = 1024

// SendResult is the success body of a send: {"id": "..."}.
type SendResult struct {
	// ID is Connectly's message id; delivery webhooks carry it as statusUpdate.id.
	ID string `json:"id"`
}

// ErrorBody is the documented error envelope, shared by synchronous errors and
// statusUpdate.error in delivery webhooks.
type ErrorBody struct {
	Message     string          `json:"message"`
	Type        string          `json:"type"`
	Code        string          `json:"code"`
	UserTitle   string          `json:"userTitle,omitempty"`
	UserMessage string          `json:"userMessage,omitempty"`
	TraceID     string          `json:"cntTraceId,omitempty"`
	Details     json.RawMessage `json:"details,omitempty"`
}

// UnmarshalJSON reads the envelope, taking a code written as a JSON number as its digits: the
// reference documents `code` as an ERROR_CODE_* string (4.1), but relays Meta's codes (9.2),
// which Meta writes as numbers. Read strictly, `{"code": 131056}` lost its code, and a pair-limit
// refusal read as a plain 400 (failed, never retried); a webhook carrying it was refused whole.
// Every other text field is read as loosely (a number as its digits, true or false as that
// word, an object or a list as its JSON text): a field Herald only shows, such as a numeric
// cntTraceId, must not make the body unreadable, for a webhook refused for it is refused on
// every delivery.
func (b *ErrorBody) UnmarshalJSON(data []byte) error {
	var v struct {
		Message     json.RawMessage `json:"message"`
		Type        json.RawMessage `json:"type"`
		Code        json.RawMessage `json:"code"`
		UserTitle   json.RawMessage `json:"userTitle"`
		UserMessage json.RawMessage `json:"userMessage"`
		TraceID     json.RawMessage `json:"cntTraceId"`
		Details     json.RawMessage `json:"details"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	*b = ErrorBody{Message: looseString(v.Message), Type: looseString(v.Type), Code: looseString(v.Code),
		UserTitle: looseString(v.UserTitle), UserMessage: looseString(v.UserMessage), TraceID: looseString(v.TraceID)}
	if d := bytes.TrimSpace(v.Details); len(d) > 0 && string(d) != "null" {
		b.Details = v.Details
	}
	return nil
}

// looseString reads a JSON value as text: a string as itself, null or nothing as "", a
// number as its digits as written, anything else (true, an object, a list) as its compact
// JSON text.
func looseString(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return ""
	case raw[0] == '"':
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	}
	var buf bytes.Buffer
	if json.Compact(&buf, raw) == nil {
		return buf.String()
	}
	return string(raw)
}
