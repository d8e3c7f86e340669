package fakeconnectly

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// controlPrefix starts the paths of the control endpoints. They need no API key.
const controlPrefix = "/_fake/"

// serveControl answers the control endpoints:
//
//	GET  /_fake/received  JSON array of Received
//	GET  /_fake/stats     JSON Stats
//	POST /_fake/reset     Reset; answers {}
//	GET  /_fake/rules     JSON array of the current rules
//	POST /_fake/rules     SetRules with a JSON array of rules; 400 when they are invalid
//	GET  /_fake/accepted  JSON object: number -> times taken as sent (AcceptedCounts)
//	GET  /_fake/replies   JSON array of the current replies
//	POST /_fake/replies   SetReplies with a JSON array of replies; 400 when invalid
//	POST /_fake/inbound   Inbound with {"number": ..., "text" or "button", "payload", "shape"};
//	                      answers {"shape": ...}; 400 when it cannot be sent. It opens the
//	                      number's 24-hour window.
//	GET  /_fake/windows   JSON array of Window: every customer who wrote, and their window
//	POST /_fake/windows   OpenWindow with {"number": ..., "at": RFC 3339 time, optional}, no
//	                      webhook; answers the Window; 400 for a bad number or time
//	DELETE /_fake/windows ClearWindows; answers {}
//	GET  /_fake/inbound?number=N  JSON array of InboundRecord: the inbound messages sent
//	                      from N (RepliesFrom)
//	GET  /_fake/conversations     JSON array of Conversation, by number; with ?number=N
//	                      the one Conversation of N. 409 when MaxReceived is set.
//	GET  /_fake/webhooks  JSON WebhookStats
//	GET  /_fake/receivers JSON Receivers
//	POST /_fake/receivers SetReceivers with a JSON Receivers; 400 when invalid
func (s *Server) serveControl(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, controlPrefix)
	method := http.MethodGet
	switch name {
	case "reset":
		method = http.MethodPost
	case "rules", "replies", "inbound", "receivers":
		if r.Method == http.MethodPost || name == "inbound" && r.Method != http.MethodGet {
			method = http.MethodPost
		}
	case "windows":
		if r.Method == http.MethodPost || r.Method == http.MethodDelete {
			method = r.Method
		}
	case "received", "stats", "accepted", "conversations", "webhooks":
	default:
		writeError(w, apiError{Status: http.StatusNotFound, Message: "Not Found"})
		return
	}
	if r.Method != method {
		w.Header().Set("Allow", method)
		writeError(w, apiError{Status: http.StatusMethodNotAllowed, Message: "Method Not Allowed"})
		return
	}
	switch {
	case name == "received":
		writeJSON(w, http.StatusOK, s.Received())
	case name == "stats":
		writeJSON(w, http.StatusOK, s.Stats())
	case name == "reset":
		s.Reset()
		writeJSON(w, http.StatusOK, struct{}{})
	case name == "rules" && method == http.MethodGet:
		writeJSON(w, http.StatusOK, s.Rules())
	case name == "accepted":
		writeJSON(w, http.StatusOK, s.AcceptedCounts())
	case name == "replies" && method == http.MethodGet:
		writeJSON(w, http.StatusOK, s.Replies())
	case name == "replies":
		var replies []Reply
		if !decodeControl(w, r, &replies) {
			return
		}
		if err := s.SetReplies(replies); err != nil {
			writeError(w, apiError{Status: http.StatusBadRequest, Type: TypeInvalidRequest, Message: "invalid replies: " + err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, struct{}{})
	case name == "inbound" && method == http.MethodGet:
		writeJSON(w, http.StatusOK, s.RepliesFrom(r.URL.Query().Get("number")))
	case name == "conversations":
		var v any
		var err error
		if n := r.URL.Query().Get("number"); n != "" {
			v, err = s.Conversation(n)
		} else {
			v, err = s.Conversations()
		}
		if err != nil {
			writeError(w, apiError{Status: http.StatusConflict, Message: err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, v)
	case name == "webhooks":
		writeJSON(w, http.StatusOK, s.WebhookStats())
	case name == "receivers" && method == http.MethodGet:
		writeJSON(w, http.StatusOK, s.Receivers())
	case name == "receivers":
		var in Receivers
		if !decodeControl(w, r, &in) {
			return
		}
		if err := s.SetReceivers(in); err != nil {
			writeError(w, apiError{Status: http.StatusBadRequest, Type: TypeInvalidRequest, Message: "invalid receivers: " + err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, struct{}{})
	case name == "inbound":
		var in inboundRequest
		if !decodeControl(w, r, &in) {
			return
		}
		shape, err := s.Inbound(in.Number, in.Reply)
		if err != nil {
			writeError(w, apiError{Status: http.StatusBadRequest, Type: TypeInvalidRequest, Message: err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"shape": shape})
	case name == "windows" && method == http.MethodGet:
		writeJSON(w, http.StatusOK, s.Windows())
	case name == "windows" && method == http.MethodDelete:
		s.ClearWindows()
		writeJSON(w, http.StatusOK, struct{}{})
	case name == "windows":
		var in windowRequest
		if !decodeControl(w, r, &in) {
			return
		}
		if err := s.OpenWindow(in.Number, in.At); err != nil {
			writeError(w, apiError{Status: http.StatusBadRequest, Type: TypeInvalidRequest, Message: err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, s.WindowOf(in.Number))
	default: // POST rules
		var rules []Rule
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rules); err != nil {
			writeError(w, apiError{Status: http.StatusBadRequest, Type: TypeInvalidRequest, Message: "invalid rules: " + err.Error()})
			return
		}
		if err := ValidateRules(rules); err != nil {
			writeError(w, apiError{Status: http.StatusBadRequest, Type: TypeInvalidRequest, Message: "invalid rules: " + err.Error()})
			return
		}
		s.SetRules(rules)
		writeJSON(w, http.StatusOK, struct{}{})
	}
}

// inboundRequest is the body of POST /_fake/inbound: a Reply and the customer's number.
type inboundRequest struct {
	Number string `json:"number"`
	Reply
}

// windowRequest is the body of POST /_fake/windows.
type windowRequest struct {
	Number string    `json:"number"`
	At     time.Time `json:"at"`
}

// decodeControl reads a control request's JSON body strictly, answering 400 when it cannot.
func decodeControl(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, apiError{Status: http.StatusBadRequest, Type: TypeInvalidRequest, Message: "invalid body: " + err.Error()})
		return false
	}
	return true
}

// Remote drives a fake running in another process through its control endpoints.
type Remote struct {
	// BaseURL is the fake's base URL, as returned by Start.
	BaseURL string
	// HTTPClient is used for the calls; nil means http.DefaultClient.
	HTTPClient *http.Client
}

// Received returns the fake's record of every send.
func (c Remote) Received(ctx context.Context) ([]Received, error) {
	var out []Received
	err := c.call(ctx, http.MethodGet, "received", nil, &out)
	return out, err
}

// Stats returns the fake's totals.
func (c Remote) Stats(ctx context.Context) (Stats, error) {
	var out Stats
	err := c.call(ctx, http.MethodGet, "stats", nil, &out)
	return out, err
}

// Reset makes the fake forget its record and counters.
func (c Remote) Reset(ctx context.Context) error {
	return c.call(ctx, http.MethodPost, "reset", nil, nil)
}

// Rules returns the fake's current rules.
func (c Remote) Rules(ctx context.Context) ([]Rule, error) {
	var out []Rule
	err := c.call(ctx, http.MethodGet, "rules", nil, &out)
	return out, err
}

// SetRules replaces the fake's rules.
func (c Remote) SetRules(ctx context.Context, rules []Rule) error {
	if rules == nil {
		rules = []Rule{}
	}
	body, err := json.Marshal(rules)
	if err != nil {
		return fmt.Errorf("fakeconnectly: encode rules: %w", err)
	}
	return c.call(ctx, http.MethodPost, "rules", body, nil)
}

// AcceptedCounts returns, per number, how many times the fake took a message as sent.
func (c Remote) AcceptedCounts(ctx context.Context) (map[string]int, error) {
	var out map[string]int
	err := c.call(ctx, http.MethodGet, "accepted", nil, &out)
	return out, err
}

// SetReplies replaces the fake's replies.
func (c Remote) SetReplies(ctx context.Context, replies []Reply) error {
	if replies == nil {
		replies = []Reply{}
	}
	body, err := json.Marshal(replies)
	if err != nil {
		return fmt.Errorf("fakeconnectly: encode replies: %w", err)
	}
	return c.call(ctx, http.MethodPost, "replies", body, nil)
}

// Inbound makes the fake send an inbound message r from number; it returns the shape used.
func (c Remote) Inbound(ctx context.Context, number string, r Reply) (string, error) {
	body, err := json.Marshal(inboundRequest{Number: number, Reply: r})
	if err != nil {
		return "", fmt.Errorf("fakeconnectly: encode inbound: %w", err)
	}
	var out struct {
		Shape string `json:"shape"`
	}
	err = c.call(ctx, http.MethodPost, "inbound", body, &out)
	return out.Shape, err
}

// OpenWindow records an inbound message from number at at (zero: the fake's now) without
// a webhook, and returns the number's window.
func (c Remote) OpenWindow(ctx context.Context, number string, at time.Time) (Window, error) {
	body, err := json.Marshal(windowRequest{Number: number, At: at})
	if err != nil {
		return Window{}, fmt.Errorf("fakeconnectly: encode window: %w", err)
	}
	var out Window
	err = c.call(ctx, http.MethodPost, "windows", body, &out)
	return out, err
}

// Windows returns the window of every customer the fake has had an inbound message from.
func (c Remote) Windows(ctx context.Context) ([]Window, error) {
	var out []Window
	err := c.call(ctx, http.MethodGet, "windows", nil, &out)
	return out, err
}

// ClearWindows makes the fake forget every inbound message.
func (c Remote) ClearWindows(ctx context.Context) error {
	return c.call(ctx, http.MethodDelete, "windows", nil, nil)
}

// Conversations returns the fake's record of every customer (Server.Conversations).
func (c Remote) Conversations(ctx context.Context) ([]Conversation, error) {
	var out []Conversation
	err := c.call(ctx, http.MethodGet, "conversations", nil, &out)
	return out, err
}

// Conversation returns the fake's record of number (Server.Conversation).
func (c Remote) Conversation(ctx context.Context, number string) (Conversation, error) {
	var out Conversation
	err := c.call(ctx, http.MethodGet, "conversations?number="+url.QueryEscape(number), nil, &out)
	return out, err
}

// RepliesFrom returns the inbound messages the fake sent from number (Server.RepliesFrom).
func (c Remote) RepliesFrom(ctx context.Context, number string) ([]InboundRecord, error) {
	var out []InboundRecord
	err := c.call(ctx, http.MethodGet, "inbound?number="+url.QueryEscape(number), nil, &out)
	return out, err
}

// WebhookStats returns the totals of the fake's webhook calls.
func (c Remote) WebhookStats(ctx context.Context) (WebhookStats, error) {
	var out WebhookStats
	err := c.call(ctx, http.MethodGet, "webhooks", nil, &out)
	return out, err
}

// Receivers returns the addresses the fake calls webhooks at.
func (c Remote) Receivers(ctx context.Context) (Receivers, error) {
	var out Receivers
	err := c.call(ctx, http.MethodGet, "receivers", nil, &out)
	return out, err
}

// SetReceivers replaces the addresses the fake calls webhooks at, for example two replicas
// of a receiver.
func (c Remote) SetReceivers(ctx context.Context, r Receivers) error {
	body, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("fakeconnectly: encode receivers: %w", err)
	}
	return c.call(ctx, http.MethodPost, "receivers", body, nil)
}

func (c Remote) call(ctx context.Context, method, name string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+controlPrefix+name, rd)
	if err != nil {
		return fmt.Errorf("fakeconnectly: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("fakeconnectly: %s %s: %w", method, name, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("fakeconnectly: %s %s: read answer: %w", method, name, err)
	}
	if resp.StatusCode != http.StatusOK {
		var eb errorBody
		_ = json.Unmarshal(raw, &eb)
		return fmt.Errorf("fakeconnectly: %s %s: HTTP %d %s", method, name, resp.StatusCode, eb.Message)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("fakeconnectly: %s %s: decode answer: %w", method, name, err)
		}
	}
	return nil
}
