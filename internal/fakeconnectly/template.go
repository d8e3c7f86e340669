package fakeconnectly

import "encoding/json"

// TemplateMessage is the body of a template send (reference 2.1), as the fake decodes it:
// these seven fields and no other, spelled as the reference spells them. The record keeps it
// in the same form (Received.Message), also for a session send's shared fields.
type TemplateMessage struct {
	// Number is the recipient: E.164 ("+16502223333") or "bsuid:" and a BSUID (reference 6).
	Number       string `json:"number"`
	TemplateName string `json:"templateName"`
	Language     string `json:"language"`
	// Parameters are the template's variables, keyed as in reference 2.2.
	Parameters []Parameter `json:"parameters"`
	// Sender is the business number, a plain string here (an object on a session send).
	Sender string `json:"sender,omitempty"`
	// CallbackData is any JSON value of at most 1,024 bytes, echoed on the message's webhook
	// events (reference 2.1 and 5.4).
	CallbackData json.RawMessage `json:"callbackData,omitempty"`
	CampaignName string          `json:"campaignName,omitempty"`
}

// Parameter is one item of a template send's parameters: {"name": ..., "value": ...}
// (reference 2.1 and 2.2).
type Parameter struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// sendResult is the answer to an accepted send, on both send endpoints: {"id": "..."}, the
// message id the delivery webhooks carry as statusUpdate.id (reference 2.3 and 3).
type sendResult struct {
	ID string `json:"id"`
}
