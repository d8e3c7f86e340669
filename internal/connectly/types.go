package connectly

import (
	"bytes"
	"encoding/json"
	"fmt"
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
func (b *ErrorBody) UnmarshalJSON(data []byte) error {
	type plain ErrorBody
	var v struct {
		plain
		Code json.RawMessage `json:"code"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	*b = ErrorBody(v.plain)
	b.Code = ""
	code := bytes.TrimSpace(v.Code)
	switch {
	case len(code) == 0 || string(code) == "null":
	case code[0] == '"':
		return json.Unmarshal(code, &b.Code)
	default:
		var n json.Number
		if err := json.Unmarshal(code, &n); err != nil {
			return fmt.Errorf("connectly: error code %s is neither a string nor a number", code)
		}
		b.Code = n.String()
	}
	return nil
}
