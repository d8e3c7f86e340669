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
//	POST /_fake/inbound   InboundTo with {"number": ..., "to": business number, optional,
//	                      "text" or "button", "payload", "shape"}; answers {"shape": ...};
//	                      400 when it cannot be sent. It opens the number's 24-hour window
//	                      to the business number written to.
//	GET  /_fake/windows   JSON array of Window: every customer who wrote, and their window
//	                      to each business number
//	POST /_fake/windows   OpenWindowTo with {"number": ..., "to": business number, optional
//	                      (none: every number), "at": RFC 3339 time, optional}, no webhook;
//	                      answers the Window; 400 for a bad number or time
//	DELETE /_fake/windows ClearWindows; answers {}
//	GET  /_fake/inbound?number=N  JSON array of InboundRecord: the inbound messages sent
//	                      from N (RepliesFrom)
//	GET  /_fake/conversations     JSON array of Conversation, by number; with ?number=N
//	                      the one Conversation of N. 409 when MaxReceived is set.
//	GET  /_fake/webhooks  JSON WebhookStats
//	GET  /_fake/receivers JSON Receivers
//	POST /_fake/receivers SetReceivers with a JSON Receivers; 400 when invalid
//	GET  /_fake/fates     JSON array of the current fates
//	POST /_fake/fates     SetFates with a JSON array of fates; 400 when invalid (or when
//	                      the fake sends no webhooks)
//	GET  /_fake/templates JSON array of the business's templates
//	POST /_fake/templates SetTemplates with a JSON array of templates; 400 when invalid
func (s *Server) serveControl(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, controlPrefix)
	method := http.MethodGet
	switch name {
	case "reset":
		method = http.MethodPost
	case "rules", "replies", "inbound", "receivers", "fates", "templates":
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
	if method == http.MethodGet {
		v, err := s.controlRead(name, r.URL.Query().Get("number"))
		if err != nil {
			writeError(w, apiError{Status: http.StatusConflict, Message: err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, v)
		return
	}
	switch {
	case name == "reset":
		s.Reset()
		writeJSON(w, http.StatusOK, struct{}{})
	case name == "replies":
		setControl(w, r, "replies", s.SetReplies)
	case name == "receivers":
		setControl(w, r, "receivers", s.SetReceivers)
	case name == "fates":
		setControl(w, r, "fates", s.SetFates)
	case name == "templates":
		setControl(w, r, "templates", s.SetTemplates)
	case name == "inbound":
		var in inboundRequest
		if !decodeControl(w, r, &in) {
			return
		}
		shape, err := s.InboundTo(in.Number, in.To, in.Reply)
		if err != nil {
			writeError(w, *badRequest(err.Error()))
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"shape": shape})
	case name == "windows" && method == http.MethodDelete:
		s.ClearWindows()
		writeJSON(w, http.StatusOK, struct{}{})
	case name == "windows":
		var in windowRequest
		if !decodeControl(w, r, &in) {
			return
		}
		if err := s.OpenWindowTo(in.Number, in.To, in.At); err != nil {
			writeError(w, *badRequest(err.Error()))
			return
		}
		writeJSON(w, http.StatusOK, s.WindowTo(in.Number, in.To))
	default: // POST rules
		var rules []Rule
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rules); err != nil {
			writeError(w, *badRequest("invalid rules: " + err.Error()))
			return
		}
		if err := ValidateRules(rules); err != nil {
			writeError(w, *badRequest("invalid rules: " + err.Error()))
			return
		}
		s.SetRules(rules)
		writeJSON(w, http.StatusOK, struct{}{})
	}
}

// controlReads are the answers of the GET control endpoints but conversations, by name;
// number is the request's number parameter.
var controlReads = map[string]func(s *Server, number string) any{
	"received":  func(s *Server, _ string) any { return s.Received() },
	"stats":     func(s *Server, _ string) any { return s.Stats() },
	"rules":     func(s *Server, _ string) any { return s.Rules() },
	"accepted":  func(s *Server, _ string) any { return s.AcceptedCounts() },
	"replies":   func(s *Server, _ string) any { return s.Replies() },
	"inbound":   func(s *Server, number string) any { return s.RepliesFrom(number) },
	"webhooks":  func(s *Server, _ string) any { return s.WebhookStats() },
	"receivers": func(s *Server, _ string) any { return s.Receivers() },
	"windows":   func(s *Server, _ string) any { return s.Windows() },
	"fates":     func(s *Server, _ string) any { return s.Fates() },
	"templates": func(s *Server, _ string) any { return s.Templates() },
}

// controlRead returns the answer of GET /_fake/<name>, number being the request's number
// parameter. Only conversations fails: when MaxReceived is set.
func (s *Server) controlRead(name, number string) (any, error) {
	if name != "conversations" {
		return controlReads[name](s, number), nil
	}
	if number != "" {
		return s.Conversation(number)
	}
	return s.Conversations()
}

// inboundRequest is the body of POST /_fake/inbound: a Reply, the customer's number and the
// business number written to ("" as Inbound).
type inboundRequest struct {
	Number string `json:"number"`
	To     string `json:"to,omitempty"`
	Reply
}

// windowRequest is the body of POST /_fake/windows.
type windowRequest struct {
	Number string    `json:"number"`
	To     string    `json:"to,omitempty"`
	At     time.Time `json:"at"`
}

// decodeControl reads a control request's JSON body strictly, answering 400 when it cannot.
func decodeControl(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, *badRequest("invalid body: " + err.Error()))
		return false
	}
	return true
}

// setControl decodes a control request's body into a T and hands it to set, answering {},
// or 400 "invalid <what>: ..." when set refuses it.
func setControl[T any](w http.ResponseWriter, r *http.Request, what string, set func(T) error) {
	var v T
	if !decodeControl(w, r, &v) {
		return
	}
	if err := set(v); err != nil {
		writeError(w, *badRequest("invalid " + what + ": " + err.Error()))
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
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
	return get[[]Received](ctx, c, "received")
}

// Stats returns the fake's totals.
func (c Remote) Stats(ctx context.Context) (Stats, error) {
	return get[Stats](ctx, c, "stats")
}

// Reset makes the fake forget its record and counters.
func (c Remote) Reset(ctx context.Context) error {
	return c.call(ctx, http.MethodPost, "reset", nil, nil)
}

// Rules returns the fake's current rules.
func (c Remote) Rules(ctx context.Context) ([]Rule, error) {
	return get[[]Rule](ctx, c, "rules")
}

// SetRules replaces the fake's rules.
func (c Remote) SetRules(ctx context.Context, rules []Rule) error {
	return setList(ctx, c, "rules", rules)
}

// AcceptedCounts returns, per number, how many times the fake took a message as sent.
func (c Remote) AcceptedCounts(ctx context.Context) (map[string]int, error) {
	return get[map[string]int](ctx, c, "accepted")
}

// SetReplies replaces the fake's replies.
func (c Remote) SetReplies(ctx context.Context, replies []Reply) error {
	return setList(ctx, c, "replies", replies)
}

// Inbound makes the fake send an inbound message r from number; it returns the shape used.
func (c Remote) Inbound(ctx context.Context, number string, r Reply) (string, error) {
	return c.InboundTo(ctx, number, "", r)
}

// InboundTo is Inbound to business number to ("" as Inbound).
func (c Remote) InboundTo(ctx context.Context, number, to string, r Reply) (string, error) {
	var out struct {
		Shape string `json:"shape"`
	}
	err := c.post(ctx, "inbound", "inbound", inboundRequest{Number: number, To: to, Reply: r}, &out)
	return out.Shape, err
}

// OpenWindow records an inbound message from number at at (zero: the fake's now) without
// a webhook, to every business number, and returns the number's window.
func (c Remote) OpenWindow(ctx context.Context, number string, at time.Time) (Window, error) {
	return c.OpenWindowTo(ctx, number, "", at)
}

// OpenWindowTo is OpenWindow for a message to business number to ("": every number).
func (c Remote) OpenWindowTo(ctx context.Context, number, to string, at time.Time) (Window, error) {
	var out Window
	err := c.post(ctx, "windows", "window", windowRequest{Number: number, To: to, At: at}, &out)
	return out, err
}

// Windows returns the window of every customer the fake has had an inbound message from.
func (c Remote) Windows(ctx context.Context) ([]Window, error) {
	return get[[]Window](ctx, c, "windows")
}

// ClearWindows makes the fake forget every inbound message.
func (c Remote) ClearWindows(ctx context.Context) error {
	return c.call(ctx, http.MethodDelete, "windows", nil, nil)
}

// Conversations returns the fake's record of every customer (Server.Conversations).
func (c Remote) Conversations(ctx context.Context) ([]Conversation, error) {
	return get[[]Conversation](ctx, c, "conversations")
}

// Conversation returns the fake's record of number (Server.Conversation).
func (c Remote) Conversation(ctx context.Context, number string) (Conversation, error) {
	return get[Conversation](ctx, c, "conversations?number="+url.QueryEscape(number))
}

// RepliesFrom returns the inbound messages the fake sent from number (Server.RepliesFrom).
func (c Remote) RepliesFrom(ctx context.Context, number string) ([]InboundRecord, error) {
	return get[[]InboundRecord](ctx, c, "inbound?number="+url.QueryEscape(number))
}

// WebhookStats returns the totals of the fake's webhook calls.
func (c Remote) WebhookStats(ctx context.Context) (WebhookStats, error) {
	return get[WebhookStats](ctx, c, "webhooks")
}

// Receivers returns the addresses the fake calls webhooks at.
func (c Remote) Receivers(ctx context.Context) (Receivers, error) {
	return get[Receivers](ctx, c, "receivers")
}

// SetReceivers replaces the addresses the fake calls webhooks at, for example two replicas
// of a receiver.
func (c Remote) SetReceivers(ctx context.Context, r Receivers) error {
	return c.post(ctx, "receivers", "receivers", r, nil)
}

// Fates returns the fake's current fates.
func (c Remote) Fates(ctx context.Context) ([]Fate, error) {
	return get[[]Fate](ctx, c, "fates")
}

// SetFates replaces the fates of the messages the fake accepts from now on.
func (c Remote) SetFates(ctx context.Context, fates []Fate) error {
	return setList(ctx, c, "fates", fates)
}

// Templates returns the business's templates as the fake has them.
func (c Remote) Templates(ctx context.Context) ([]Template, error) {
	return get[[]Template](ctx, c, "templates")
}

// SetTemplates replaces the business's templates (none: a send may name any template).
func (c Remote) SetTemplates(ctx context.Context, list []Template) error {
	return setList(ctx, c, "templates", list)
}

// setList replaces the fake's list name (POST /_fake/<name>) with list; nil sends an empty
// list, which clears it.
func setList[T any](ctx context.Context, c Remote, name string, list []T) error {
	if list == nil {
		list = []T{}
	}
	return c.post(ctx, name, name, list, nil)
}

// get decodes the answer of GET /_fake/<name> into a T.
func get[T any](ctx context.Context, c Remote, name string) (T, error) {
	var out T
	err := c.call(ctx, http.MethodGet, name, nil, &out)
	return out, err
}

// post sends in as JSON to POST /_fake/<name> and decodes the answer into out (nil: not
// decoded); what names in in the error when it cannot be encoded.
func (c Remote) post(ctx context.Context, name, what string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("fakeconnectly: encode %s: %w", what, err)
	}
	return c.call(ctx, http.MethodPost, name, body, out)
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
