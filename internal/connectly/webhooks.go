package connectly

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
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
	Filters      []WebhookFilter `json:"filters,omitempty"`
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

// EnsureWebhook makes the topic's registration point at address: it updates an existing
// registration in place (no gap in delivery), creates one when the topic has none, and
// leaves a registration that already points there alone.
func (c *Client) EnsureWebhook(ctx context.Context, topic, address string) (EnsureResult, Webhook, error) {
	list, err := c.ListWebhooks(ctx)
	if err != nil {
		return "", Webhook{}, err
	}
	for _, w := range list {
		if w.Topic != topic {
			continue
		}
		if w.Address == address {
			return WebhookUnchanged, w, nil
		}
		if w.ID == "" {
			break // cannot update without an id: create, which replaces it
		}
		if err := c.UpdateWebhook(ctx, w.ID, address, nil); err != nil {
			return "", w, err
		}
		w.Address = address
		return WebhookUpdated, w, nil
	}
	w, err := c.CreateWebhook(ctx, Webhook{Topic: topic, Address: address,
		Configuration: &WebhookConfiguration{ChannelTypes: []string{"whatsapp"}}})
	if err != nil {
		return "", Webhook{}, err
	}
	return WebhookCreated, w, nil
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
