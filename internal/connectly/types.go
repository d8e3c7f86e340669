package connectly

import "encoding/json"

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
