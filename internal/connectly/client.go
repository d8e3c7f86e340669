package connectly

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// DefaultBaseURL is Connectly's production API.
const DefaultBaseURL = "https://api.connectly.ai"

// DefaultTimeout bounds one request when ClientConfig.Timeout is not set.
const DefaultTimeout = 10 * time.Second

// ClientConfig configures a Client.
type ClientConfig struct {
	// BaseURL is the API root, default DefaultBaseURL.
	BaseURL string
	// BusinessID is the Connectly business id (a UUID). Required.
	BusinessID string
	// APIKey is sent as X-API-Key. Required. It is never logged or included in errors.
	APIKey string
	// Timeout bounds one request, including reading the answer. Default 10s.
	Timeout time.Duration
	// MaxConns is the number of idle keep-alive connections kept to Connectly; set it to at
	// least the worker concurrency (net/http's default of 2 costs a third of the throughput).
	// Default 100.
	MaxConns int
	// HTTPClient replaces the client built from the fields above (tests). Unless it has a
	// CheckRedirect of its own, the Client uses a copy that follows no redirect, as its own.
	HTTPClient *http.Client
	// SessionBSUIDField says where a session send puts a BSUID recipient: "id" (the default,
	// the current docs) or "userId" (the older docs); see BSUIDField.
	SessionBSUIDField BSUIDField
	// SendCampaignName keeps campaignName on sends; off (the default), no send carries it. See
	// Wire.CampaignName.
	SendCampaignName bool
}

// Wire is how a send's body is encoded where the provider reference leaves the choice to
// Herald. The Client encodes every send with its own Wire (Client.Wire); whatever shows a
// request body without sending it (campaign plan samples, on_reply previews) builds the same
// value from the same settings and encodes with it, so a preview is byte for byte the request.
type Wire struct {
	// BSUIDField says where a session send puts a BSUID recipient ("" is BSUIDInID).
	BSUIDField BSUIDField
	// CampaignName keeps the campaignName field of template and session sends; false drops it.
	// The reference (2.1, 10.8) reads campaignName both as an analytics tag and as the trigger
	// of the Flow-Builder flow of that name: Herald sends the campaign id there, and a flow
	// with that name would then message every recipient outside Herald's limits, suppression
	// and at-most-once. Dropping it is the safe reading; delivery events are matched by
	// callbackData, which every send carries either way.
	CampaignName bool
}

// campaignName is the campaignName a send carries under w: name, or "" (omitted).
func (w Wire) campaignName(name string) string {
	if !w.CampaignName {
		return ""
	}
	return name
}

// Client talks to the Connectly API. It is safe for concurrent use.
type Client struct {
	base       string
	businessID string
	apiKey     string
	http       *http.Client
	wire       Wire
}

// NewClient validates cfg and returns a Client.
func NewClient(cfg ClientConfig) (*Client, error) {
	base := cfg.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("connectly: base URL %q is not an absolute http(s) URL", base)
	}
	if cfg.BusinessID == "" {
		return nil, errors.New("connectly: business id is empty")
	}
	if cfg.APIKey == "" {
		return nil, errors.New("connectly: API key is empty")
	}
	bsuidField, err := ParseBSUIDField(string(cfg.SessionBSUIDField))
	if err != nil {
		return nil, err
	}
	hc := cfg.HTTPClient
	if hc != nil && hc.CheckRedirect == nil {
		// A copy, so the caller's client is left as it was, that follows no redirect either.
		own := *hc
		own.CheckRedirect = noRedirect
		hc = &own
	}
	if hc == nil {
		timeout := cfg.Timeout
		if timeout <= 0 {
			timeout = DefaultTimeout
		}
		conns := cfg.MaxConns
		if conns <= 0 {
			conns = 100
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		// HTTP/1.1 only. Over HTTP/2 a server that stops taking a connection (GOAWAY) ends
		// the requests it will not process with an error that cannot tell Herald whether
		// the message went out, once the request was written; and Go's HTTP/2 transport
		// sends a request again on its own after some resets (see post). Over HTTP/1.1 a
		// request fails either before it was written (sent again safely, by Go or by
		// Herald) or after (maybe sent), nothing else.
		var protocols http.Protocols
		protocols.SetHTTP1(true)
		tr.Protocols = &protocols
		tr.MaxIdleConns = conns * 2
		tr.MaxIdleConnsPerHost = conns
		tr.MaxConnsPerHost = 0
		hc = &http.Client{Transport: tr, Timeout: timeout, CheckRedirect: noRedirect}
	}
	return &Client{
		base:       strings.TrimRight(base, "/"),
		businessID: cfg.BusinessID,
		apiKey:     cfg.APIKey,
		http:       hc,
		wire:       Wire{BSUIDField: bsuidField, CampaignName: cfg.SendCampaignName},
	}, nil
}

// noRedirect keeps the client from following a redirect: the 3xx is the answer. Go's client
// would follow it to wherever Location points, another host included, with the X-API-Key
// header (it drops only Authorization, Cookie and the like on a new host), and take that
// host's answer, {"id": ...} say, for Connectly's. Connectly documents no redirect; a 3xx
// from its address is read by Decide as any answer without a known code (a 3xx is maybe
// sent: a proxy in front may have passed the request on before it answered).
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// Wire is how the client encodes its sends.
func (c *Client) Wire() Wire { return c.wire }

// SendPath is the path of the template send endpoint for a business.
func SendPath(businessID string) string {
	return "/v1/businesses/" + url.PathEscape(businessID) + "/send/whatsapp_templated_messages"
}

// SendTemplate sends one template message. On success it returns Connectly's message id.
// It returns an error wrapping *Error when Connectly answered with an error status, or
// *TransportError when no answer arrived (its Written field says whether the message may
// have been accepted anyway).
func (c *Client) SendTemplate(ctx context.Context, msg TemplateMessage) (SendResult, error) {
	body, err := c.wire.EncodeTemplate(msg)
	if err != nil {
		return SendResult{}, err
	}
	return c.send(ctx, SendPath(c.businessID), body)
}

// send posts a message body to a send endpoint and returns the message id of the answer.
func (c *Client) send(ctx context.Context, path string, body []byte) (SendResult, error) {
	var res SendResult
	if err := c.post(ctx, path, body, &res); err != nil {
		return SendResult{}, err
	}
	if res.ID == "" {
		// A success status without an id cannot be correlated with webhooks; the message may
		// have been accepted, so the outcome is treated as unknown rather than retried.
		return SendResult{}, &TransportError{Written: true, Err: errors.New("success answer without an id")}
	}
	return res, nil
}

// EncodeTemplate returns the exact request body SendTemplate sends for msg with a client of
// this Wire: parameters as [] when empty, no HTML escaping, callbackData within its documented
// limit, campaignName as w says.
func (w Wire) EncodeTemplate(msg TemplateMessage) ([]byte, error) {
	if msg.Parameters == nil {
		msg.Parameters = []Parameter{}
	}
	msg.CampaignName = w.campaignName(msg.CampaignName)
	if len(msg.CallbackData) > MaxCallbackData {
		return nil, fmt.Errorf("connectly: callbackData is %d bytes, limit %d", len(msg.CallbackData), MaxCallbackData)
	}
	return EncodeJSON(msg)
}

// EncodeJSON is the encoding of every request body, and of a session message kept in a task
// payload: compact, without HTML escaping, so text and URLs go out as written and nothing is
// longer on the wire than the bytes checked against its limit (MaxCallbackData,
// MaxRawMessage: "<" would otherwise become the six bytes "\u003c").
func EncodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("connectly: encode request: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// errNotAgain refuses Go's transport a request body to send again once the request was
// written whole (see post).
var errNotAgain = errors.New("not sent again: the whole request was written")

// post sends body to path and decodes a 2xx answer into out.
func (c *Client) post(ctx context.Context, path string, body []byte, out any) error {
	// written is set from the transport's write goroutine once the whole request is out;
	// answered once an answer began to arrive.
	var written, answered atomic.Bool
	trace := &httptrace.ClientTrace{
		WroteRequest:         func(info httptrace.WroteRequestInfo) { written.Store(info.Err == nil) },
		GotFirstResponseByte: func() { answered.Store(true) },
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("connectly: build request: %w", err)
	}
	// Go's transport may send the request again on its own, rebuilding the body with GetBody:
	// safely when nothing was written (a reused connection found closed), but the HTTP/2
	// transport also re-sends a POST whose stream the server (or a proxy) reset with
	// PROTOCOL_ERROR after the whole request arrived, up to six times, and Herald would record
	// one message where several went out (the reference, 4.4: a reset after the request was
	// written is a duplicate risk; nothing is idempotent). So the body is given again only
	// while the request has not been written whole: the transport reports the write (the
	// trace below) before it decides on a retry. Go's client asks for the body too, after an
	// answer, to follow a 307 or 308: it gets none, and the redirect is refused (noRedirect)
	// before any request is made, so that the 3xx is the answer.
	req.GetBody = func() (io.ReadCloser, error) {
		if answered.Load() {
			return http.NoBody, nil
		}
		if written.Load() {
			return nil, errNotAgain
		}
		return io.NopCloser(bytes.NewReader(body)), nil
	}
	req.Header.Set("X-API-Key", c.apiKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")

	resp, err := c.http.Do(req)
	if err != nil {
		return &TransportError{Written: written.Load(), Err: unwrapURLError(err)}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			// Success status but the body was lost: Connectly accepted the message.
			return &TransportError{Written: true, Err: fmt.Errorf("read answer: %w", err)}
		}
		raw = nil
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if out != nil {
			if err := json.Unmarshal(raw, out); err != nil {
				return &TransportError{Written: true, Err: fmt.Errorf("decode answer: %w", err)}
			}
		}
		return nil
	}
	apiErr := &Error{StatusCode: resp.StatusCode}
	if len(raw) > 0 {
		// An undecodable body still leaves a useful status-only error.
		_ = json.Unmarshal(raw, &apiErr.ErrorBody)
	}
	apiErr.RetryAfterSeconds = retryAfterSeconds(resp.Header.Get("Retry-After"), time.Now())
	return apiErr
}

// MaxRetryAfter is the longest wait a Retry-After header is taken for. Connectly documents no
// Retry-After and limits requests per second, so a longer wait is a misreading or a mistake;
// holding a throttled send longer than this would stall its run for no reason.
const MaxRetryAfter = time.Hour

// retryAfterSeconds reads a Retry-After value in either form RFC 9110 (10.2.3) allows: a
// number of seconds, or an HTTP date, counted from now and rounded up to whole seconds (a
// date already past is 0). Both are capped at MaxRetryAfter; anything else, or nothing, is 0.
func retryAfterSeconds(s string, now time.Time) int {
	if s == "" {
		return 0
	}
	limit := int(MaxRetryAfter / time.Second)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		// A number too large for int64 parses as the largest one, with ErrRange.
		return int(max(0, min(n, int64(limit))))
	}
	t, err := http.ParseTime(s)
	if err != nil {
		return 0
	}
	d := min(t.Sub(now), MaxRetryAfter)
	if d <= 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}

// unwrapURLError drops the *url.Error layer, whose message repeats the full URL, while
// keeping the cause reachable by errors.Is / errors.As (timeouts, net.OpError).
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return fmt.Errorf("timeout: %w", ue.Err)
		}
		return ue.Err
	}
	return err
}
