package connectly

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Webhook topics (reference 5.1).
const (
	TopicMessages       = "messages"
	TopicDeliveryStatus = "delivery_status"
)

// WebhookConfiguration is a registration's configuration object (reference 5.2).
type WebhookConfiguration struct {
	// Echo also sends outbound messages to the address.
	Echo         bool            `json:"echo"`
	ChannelTypes []string        `json:"channelTypes,omitempty"`
	Filters      []WebhookFilter `json:"filters"`
}

// deliversAll reports whether a registration with configuration cfg passes every event of
// its topic to its address: no filter, and WhatsApp among its channel types, or none named
// (no configuration at all is Connectly's default). Echoes are of no matter: the receiver
// records nothing for an echo.
func (cfg *WebhookConfiguration) deliversAll() bool {
	if cfg == nil {
		return true
	}
	return len(cfg.Filters) == 0 && (len(cfg.ChannelTypes) == 0 || slices.Contains(cfg.ChannelTypes, "whatsapp"))
}

// heraldConfiguration is the configuration of Herald's registrations: WhatsApp, no echo, and
// no filter, written out as an empty list, so that an update clears the filters a
// registration had whether Connectly replaces the configuration whole or field by field.
func heraldConfiguration() *WebhookConfiguration {
	return &WebhookConfiguration{ChannelTypes: []string{"whatsapp"}, Filters: []WebhookFilter{}}
}

// WebhookFilter limits a registration, e.g. {field: campaign_name, expression: "prod-*"}.
type WebhookFilter struct {
	Field      string `json:"field"`
	Expression string `json:"expression"`
}

// Webhook is one registration as listed by GET .../webhooks.
type Webhook struct {
	ID            string                `json:"id,omitempty"`
	Topic         string                `json:"topic"`
	Address       string                `json:"address"`
	Type          string                `json:"type,omitempty"`
	Configuration *WebhookConfiguration `json:"configuration,omitempty"`
}

func (c *Client) businessPath(rest string) string {
	return "/v1/businesses/" + url.PathEscape(c.businessID) + "/" + rest
}

// ListWebhooks lists the business's webhook registrations (GET .../webhooks).
func (c *Client) ListWebhooks(ctx context.Context) ([]Webhook, error) {
	var a struct {
		Entity struct {
			Webhooks []Webhook `json:"webhooks"`
		} `json:"entity"`
	}
	if err := c.call(ctx, http.MethodGet, c.businessPath("webhooks"), nil, &a); err != nil {
		return nil, err
	}
	return a.Entity.Webhooks, nil
}

// CreateWebhook registers address for a topic (POST .../create/webhooks). A topic has one
// address; creating a registration for a topic that has one replaces it. The reference does
// not document the answer; the registration is returned when the answer carries it (as
// {"entity": {...}} or bare), else the request's fields without an id.
func (c *Client) CreateWebhook(ctx context.Context, w Webhook) (Webhook, error) {
	if w.Type == "" {
		w.Type = "custom"
	}
	w.ID = ""
	body, err := json.Marshal(w)
	if err != nil {
		return Webhook{}, fmt.Errorf("connectly: encode webhook: %w", err)
	}
	var raw json.RawMessage
	if err := c.call(ctx, http.MethodPost, c.businessPath("create/webhooks"), body, &raw); err != nil {
		return Webhook{}, err
	}
	var a struct {
		Entity *Webhook `json:"entity"`
		Webhook
	}
	if json.Unmarshal(raw, &a) == nil {
		if a.Entity != nil && a.Entity.Topic != "" {
			return *a.Entity, nil
		}
		if a.Webhook.Topic != "" {
			return a.Webhook, nil
		}
	}
	return w, nil
}

// UpdateWebhook changes a registration's address (PUT .../update/webhooks/{id}); only the
// supplied fields change, and the topic cannot.
func (c *Client) UpdateWebhook(ctx context.Context, id, address string, cfg *WebhookConfiguration) error {
	body, err := json.Marshal(struct {
		Address       string                `json:"address,omitempty"`
		Configuration *WebhookConfiguration `json:"configuration,omitempty"`
	}{address, cfg})
	if err != nil {
		return fmt.Errorf("connectly: encode webhook update: %w", err)
	}
	return c.call(ctx, http.MethodPut, c.businessPath("update/webhooks/"+url.PathEscape(id)), body, nil)
}

// DeleteWebhook removes a registration (DELETE .../delete/webhooks/{id}).
func (c *Client) DeleteWebhook(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodDelete, c.businessPath("delete/webhooks/"+url.PathEscape(id)), nil, nil)
}

// EnsureResult says what EnsureWebhook did for a topic.
type EnsureResult string

const (
	WebhookCreated   EnsureResult = "created"
	WebhookUpdated   EnsureResult = "updated"
	WebhookUnchanged EnsureResult = "unchanged"
)

// EnsureWebhook makes the topic's registration deliver every event of the topic to address:
// it updates an existing registration in place (no gap in delivery), creates one when the
// topic has none, and leaves a registration that already points there with a configuration
// that filters nothing alone. A registration that points there but filters events (a
// campaign_name filter, channel types without WhatsApp), left by another integration or an
// operator, is updated too: Herald would get none of the events it filters out. After a change
// the registrations are listed again, and one that still does not deliver every event to
// address is an error that says what it holds, so a registration that reads as done is one
// that works.
func (c *Client) EnsureWebhook(ctx context.Context, topic, address string) (EnsureResult, Webhook, error) {
	list, err := c.ListWebhooks(ctx)
	if err != nil {
		return "", Webhook{}, err
	}
	res, w := WebhookCreated, Webhook{Topic: topic, Address: address, Configuration: heraldConfiguration()}
	for _, old := range list {
		if old.Topic != topic {
			continue
		}
		if old.Address == address && old.Configuration.deliversAll() {
			return WebhookUnchanged, old, nil
		}
		if old.ID == "" {
			break // cannot update without an id: create, which replaces it
		}
		if err := c.UpdateWebhook(ctx, old.ID, address, heraldConfiguration()); err != nil {
			return "", old, err
		}
		res, w = WebhookUpdated, old
		break
	}
	if res == WebhookCreated {
		if w, err = c.CreateWebhook(ctx, w); err != nil {
			return "", Webhook{}, err
		}
	}
	got, err := c.registration(ctx, topic)
	if err != nil {
		return res, w, fmt.Errorf("connectly: %s registration %s, but the registrations could not be listed to check it: %w", topic, res, err)
	}
	switch {
	case got == nil:
		return res, w, fmt.Errorf("connectly: %s registration %s, but Connectly lists none for the topic", topic, res)
	case got.Address != address:
		return res, *got, fmt.Errorf("connectly: %s registration %s, but Connectly lists it at another address", topic, res)
	case !got.Configuration.deliversAll():
		return res, *got, fmt.Errorf("connectly: %s registration %s, but Connectly lists it with a configuration that filters events: %s",
			topic, res, describeConfiguration(got.Configuration))
	}
	return res, *got, nil
}

// registration returns the business's registration of topic, or nil when it has none.
func (c *Client) registration(ctx context.Context, topic string) (*Webhook, error) {
	list, err := c.ListWebhooks(ctx)
	if err != nil {
		return nil, err
	}
	for i := range list {
		if list[i].Topic == topic {
			return &list[i], nil
		}
	}
	return nil, nil
}

// describeConfiguration says what in cfg keeps events from the address.
func describeConfiguration(cfg *WebhookConfiguration) string {
	var parts []string
	for _, f := range cfg.Filters {
		parts = append(parts, fmt.Sprintf("filter %s=%q", f.Field, f.Expression))
	}
	if len(cfg.ChannelTypes) > 0 && !slices.Contains(cfg.ChannelTypes, "whatsapp") {
		parts = append(parts, fmt.Sprintf("channel types %q", cfg.ChannelTypes))
	}
	return strings.Join(parts, ", ")
}

// call sends a management request and decodes a 2xx answer into out. Errors are *Error
// (Connectly answered with an error status) or *TransportError, as for sends.
func (c *Client) call(ctx context.Context, method, path string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return fmt.Errorf("connectly: build request: %w", err)
	}
	req.Header.Set("X-API-Key", c.apiKey)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return &TransportError{Err: unwrapURLError(err)}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return &TransportError{Written: true, Err: fmt.Errorf("read answer: %w", err)}
	}
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		apiErr := &Error{StatusCode: resp.StatusCode}
		_ = json.Unmarshal(raw, &apiErr.ErrorBody)
		return apiErr
	}
	if out != nil && len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("connectly: %s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}
