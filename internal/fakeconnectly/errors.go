package fakeconnectly

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Error types of the provider reference, section 4.2.
const (
	TypeAuthentication   = "ERROR_TYPE_AUTHENTICATION"
	TypeInvalidRequest   = "ERROR_TYPE_INVALID_REQUEST"
	TypeDeadlineExceeded = "ERROR_TYPE_DEADLINE_EXCEEDED"
	TypeUnspecified      = "ERROR_TYPE_UNSPECIFIED"
	// TypeFailedPrecondition is in no Connectly document: public client code treats it on a
	// session send as "cannot send now" (reference 3.1). The fake answers it only when
	// asked to (Config.WindowAnswer, or a Rule's Code).
	TypeFailedPrecondition = "ERROR_TYPE_FAILED_PRECONDITION"
)

// Error codes the fake itself answers with when it validates a send.
const (
	CodePhoneNumberBadFormat = "ERROR_CODE_PHONE_NUMBER_BAD_FORMAT"
	CodeTemplateInputInvalid = "ERROR_CODE_MESSAGE_TEMPLATE_INPUT_INVALID"
	CodeTemplateNotFound     = "ERROR_CODE_MESSAGE_TEMPLATE_NOT_FOUND"
	CodeInvalidSenderID      = "ERROR_CODE_INVALID_SENDER_ID"
	CodeSelfInvalid          = "ERROR_CODE_MESSAGE_SELF_INVALID"
	CodeUnspecified          = "ERROR_CODE_UNSPECIFIED"
	CodeTemplateDeleted      = "ERROR_CODE_MESSAGE_TEMPLATE_DELETED"

	// The session endpoint's own codes (reference 3 and 4.3).
	CodeAttachmentsNumberInvalid = "ERROR_CODE_MESSAGE_ATTACHMENTS_NUMBER_INVALID"
	CodeTextEmpty                = "ERROR_CODE_MESSAGE_TEXT_EMPTY"
	CodeAttachmentEmpty          = "ERROR_CODE_MESSAGE_ATTACHMENT_EMPTY"
	CodeAttachmentInvalid        = "ERROR_CODE_MESSAGE_ATTACHMENT_INVALID"
	CodeMissesMatchingChannel    = "ERROR_CODE_BUSINESS_MISSES_MATCHING_CHANNEL"
	CodeOutsideWindow            = "ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW"
	CodeNoConversation           = "ERROR_CODE_MESSAGE_CUSTOMER_NO_CONVERSATION_INITIATION"
)

// CodeCanceled is the ErrorCode recorded for a request whose client went away while a rule's
// Latency was being waited out: nothing was answered. Without a message id the message was
// not sent; with one (Rule.Sent: taken on arrival) it went out all the same.
const CodeCanceled = "CANCELED"

// CodeDropped is the ErrorCode recorded for a request whose connection the fake closed before
// taking the message (Rule.LoseResponse with NotSent): nothing was answered, nothing sent.
const CodeDropped = "DROPPED"

// userMessage is the troubleshooting hint every documented error body carries.
const userMessage = "Pass along the connectly trace id 'cnct_trace_id' to the team for more information."

// authMessage is the message of the 401 answer to a missing or wrong X-API-Key.
const authMessage = "Missing or invalid X-API-Key"

// errorBody is the documented error envelope (reference 4.1), the body of an error answer
// and statusUpdate.error of a delivery_failed event (5.4). It writes every field, as the
// provider's examples do, but those named in omit. Code is a string, the documented form,
// or a json.Number when a Rule asks for a numeric one (Rule.NumericCode).
type errorBody struct {
	Message     string          `json:"message"`
	Type        string          `json:"type"`
	Code        any             `json:"code"`
	UserTitle   string          `json:"userTitle"`
	UserMessage string          `json:"userMessage"`
	TraceID     string          `json:"cntTraceId"`
	Details     json.RawMessage `json:"details"`
	// omit names the fields left out of the JSON, by their JSON names.
	omit []string
}

// errorBodyPlain is errorBody without its MarshalJSON.
type errorBodyPlain errorBody

// MarshalJSON writes the body's fields in the documented order, but those in omit.
func (b errorBody) MarshalJSON() ([]byte, error) {
	if len(b.omit) == 0 {
		return json.Marshal(errorBodyPlain(b))
	}
	var buf bytes.Buffer
	buf.WriteByte('{')
	for _, f := range []struct {
		name string
		v    any
	}{{"message", b.Message}, {"type", b.Type}, {"code", b.Code}, {"userTitle", b.UserTitle},
		{"userMessage", b.UserMessage}, {"cntTraceId", b.TraceID}, {"details", b.Details}} {
		if slices.Contains(b.omit, f.name) {
			continue
		}
		v, err := json.Marshal(f.v)
		if err != nil {
			return nil, err
		}
		if buf.Len() > 1 {
			buf.WriteByte(',')
		}
		buf.WriteString(strconv.Quote(f.name))
		buf.WriteByte(':')
		buf.Write(v)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// What an error body carries where the fake has no documented code or type for its answer
// (Config.UncodedBody): a 401 for the X-API-Key has the documented type
// ERROR_TYPE_AUTHENTICATION but no code, a 404 for another business id or path and a 405
// neither, and a session send's 400 for a rule no documented code names (badRequest) has
// ERROR_TYPE_INVALID_REQUEST but no code.
const (
	// UncodedUnspecified, the default ("" too): code ERROR_CODE_UNSPECIFIED and type
	// ERROR_TYPE_UNSPECIFIED. Reference 4.1 defines code and type as string enums
	// (ERROR_CODE_*, ERROR_TYPE_*); (inferred) a protobuf JSON gateway, which 1 infers the
	// backend to be, writes an enum left unset as its *_UNSPECIFIED value, and 4.2 and 4.3
	// list ERROR_TYPE_UNSPECIFIED and ERROR_CODE_UNSPECIFIED.
	UncodedUnspecified = "unspecified"
	// UncodedEmpty writes them as empty strings, "code": "".
	UncodedEmpty = "empty"
	// UncodedAbsent leaves them out of the body.
	UncodedAbsent = "absent"
)

// uncodedBodies lists the values of Config.UncodedBody.
var uncodedBodies = choice{UncodedUnspecified, UncodedEmpty, UncodedAbsent}

// Shapes of an error answer's body (Rule.Body, Config.RateLimitBody, Received.Body).
const (
	// BodyError is Connectly's JSON error body of reference 4.1 (message, type, code,
	// userTitle, userMessage, cntTraceId, details), sent as application/json. The default.
	BodyError = "error"
	// BodyEmpty is no body at all: the status line and a Content-Length of 0, no Content-Type.
	BodyEmpty = "empty"
	// BodyGateway is a short HTML page of the kind a proxy or load balancer in front of the API
	// writes ("502 Bad Gateway"), sent as text/html: not JSON.
	BodyGateway = "gateway"
	// BodyGRPC is grpc-gateway's default error body, {"code": <gRPC status number>,
	// "message": "...", "details": []}, sent as application/json, at the HTTP status the
	// gateway's default mapping gives the gRPC status (GRPCStatuses) unless the rule sets
	// one. (inferred) Reference 1 infers a Go + gRPC backend behind grpc-gateway and warns
	// that with the default mapping a DEADLINE_EXCEEDED "could arrive as HTTP 504"; this is
	// the body such an answer has when Connectly's own error body is not written over it.
	// The record keys it GRPC_<status name>.
	BodyGRPC = "grpc"
)

// GRPCStatus is a gRPC status code as grpc-gateway answers it by default.
type GRPCStatus struct {
	// Name is the status's name (google.rpc.Code): DEADLINE_EXCEEDED.
	Name string
	// HTTP is the status grpc-gateway's default mapping (runtime.HTTPStatusFromCode) answers
	// it with: DEADLINE_EXCEEDED 504, RESOURCE_EXHAUSTED 429, FAILED_PRECONDITION 400.
	HTTP int
	// Message is the fake's message for it, when the rule gives none.
	Message string
}

// GRPCStatuses are the gRPC status codes, indexed by number (0 to 16).
var GRPCStatuses = [...]GRPCStatus{
	{"OK", http.StatusOK, ""},
	{"CANCELLED", 499, "context canceled"},
	{"UNKNOWN", http.StatusInternalServerError, "unknown error"},
	{"INVALID_ARGUMENT", http.StatusBadRequest, "invalid argument"},
	{"DEADLINE_EXCEEDED", http.StatusGatewayTimeout, "context deadline exceeded"},
	{"NOT_FOUND", http.StatusNotFound, "not found"},
	{"ALREADY_EXISTS", http.StatusConflict, "already exists"},
	{"PERMISSION_DENIED", http.StatusForbidden, "permission denied"},
	{"RESOURCE_EXHAUSTED", http.StatusTooManyRequests, "resource exhausted"},
	{"FAILED_PRECONDITION", http.StatusBadRequest, "failed precondition"},
	{"ABORTED", http.StatusConflict, "aborted"},
	{"OUT_OF_RANGE", http.StatusBadRequest, "out of range"},
	{"UNIMPLEMENTED", http.StatusNotImplemented, "unimplemented"},
	{"INTERNAL", http.StatusInternalServerError, "internal error"},
	{"UNAVAILABLE", http.StatusServiceUnavailable, "service unavailable"},
	{"DATA_LOSS", http.StatusInternalServerError, "data loss"},
	{"UNAUTHENTICATED", http.StatusUnauthorized, authMessage},
}

// grpcStatusOf returns the number of the gRPC status code names: its name
// ("DEADLINE_EXCEEDED") or its number ("4").
func grpcStatusOf(code string) (int, bool) {
	if numericCode(code) {
		n, err := strconv.Atoi(code)
		return n, err == nil && n < len(GRPCStatuses)
	}
	for n, st := range GRPCStatuses {
		if st.Name == code {
			return n, true
		}
	}
	return 0, false
}

// grpcError is the BodyGRPC answer of the gRPC status code names (grpcStatusOf), at status
// when not zero, else at the gateway's default HTTP status for it. Its Code is the status's
// name.
func grpcError(code string, status int) apiError {
	n, _ := grpcStatusOf(code)
	st := GRPCStatuses[n]
	return apiError{Status: cmp.Or(status, st.HTTP), Code: st.Name, Message: st.Message, Body: BodyGRPC}
}

// gatewayBody is grpc-gateway's default error body: google.rpc.Status as protobuf JSON, every
// field written (the gateway's marshaller emits unpopulated fields), details an empty list.
type gatewayBody struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Details []any  `json:"details"`
}

// apiError is an error answer before it is written: the HTTP status, the body fields that
// vary between errors and the body's shape.
type apiError struct {
	Status  int
	Type    string
	Code    string
	Message string
	// UserTitle is the body's userTitle; empty means Message.
	UserTitle string
	// Body is the body's shape; empty means BodyError.
	Body string
	// Details is the body's details object (or null); empty means {}.
	Details json.RawMessage
	// RetryAfter is the Retry-After header's value; empty means no header.
	RetryAfter string
	// NumericCode writes Code, a string of digits, as a JSON number (Rule.NumericCode).
	NumericCode bool
	// Omit names the body's fields to leave out (Rule.Omit).
	Omit []string
	// uncoded is how the body writes an empty Code or Type (Config.UncodedBody; ""
	// is UncodedUnspecified). Set when the answer is written.
	uncoded string
}

// shape is the answer's body shape, never empty.
func (e apiError) shape() string {
	if e.Body == "" {
		return BodyError
	}
	return e.Body
}

// key is what the record and Stats.Errors use for this answer: the body code,
// "GRPC_<status name>" for a BodyGRPC answer, or "HTTP_<status>" when the answer has none of its own (whatever Config.UncodedBody writes
// in its place) or is not a JSON error body at all.
func (e apiError) key() string {
	if e.Code != "" && e.shape() == BodyError {
		return e.Code
	}
	if e.shape() == BodyGRPC {
		return "GRPC_" + e.Code
	}
	return "HTTP_" + strconv.Itoa(e.Status)
}

func (e apiError) body() errorBody {
	title := e.UserTitle
	if title == "" {
		title = e.Message
	}
	details := e.Details
	if len(details) == 0 {
		details = json.RawMessage("{}")
	}
	var code any = e.Code
	if e.NumericCode {
		code = json.Number(e.Code)
	}
	b := errorBody{
		Message:     e.Message,
		Type:        e.Type,
		Code:        code,
		UserTitle:   title,
		UserMessage: userMessage,
		TraceID:     strconv.FormatUint(rand.Uint64(), 10),
		Details:     details,
		omit:        slices.Clone(e.Omit),
	}
	if e.Code == "" {
		b.Code = e.uncodedAs(CodeUnspecified, "code", &b.omit)
	}
	if e.Type == "" {
		b.Type = e.uncodedAs(TypeUnspecified, "type", &b.omit)
	}
	return b
}

// uncodedAs is what the body writes for the field name (code or type) that the answer leaves
// empty, by Config.UncodedBody: unspecified, or "", or "" with name added to omit.
func (e apiError) uncodedAs(unspecified, name string, omit *[]string) string {
	switch e.uncoded {
	case UncodedEmpty:
		return ""
	case UncodedAbsent:
		*omit = append(*omit, name)
		return ""
	}
	return unspecified
}

func invalid(code, message string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Type: TypeInvalidRequest, Code: code, Message: message}
}

// badRequest is the session endpoint's answer to a body that breaks a rule no documented
// code names (a malformed body, a limit of WhatsApp's such as 3 reply buttons): 400,
// ERROR_TYPE_INVALID_REQUEST and no code of its own, which the body writes as
// Config.UncodedBody says (ERROR_CODE_UNSPECIFIED by default). (inferred) The reference has no code for
// these: ERROR_CODE_MESSAGE_TEMPLATE_INPUT_INVALID means a template's parameters and a
// session message has none, and ERROR_CODE_UNSPECIFIED is an internal error a client would
// retry. A 400 without a known code is the reference's "request bug, do not retry" (4.4).
// The record keys it HTTP_400. The control endpoints and the webhook API answer a request
// they refuse the same way.
func badRequest(message string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Type: TypeInvalidRequest, Message: message}
}

// errorParts are the parts of an error body (reference 4.1) that a Rule, a Fate and a
// template's delivery failure (Template.DeliveryFailure) may set beside the code, so that a
// send's error answer and a delivery_failed event's statusUpdate.error, which reference 4.1
// says share one shape, can carry the same bodies. Each owner keeps them as its own fields
// (Rule.Type, Fate.Type, Template.DeliveryType...) and builds its error with
// errorParts.apply.
type errorParts struct {
	// Type and Message replace the body's type and message (the code stays); userTitle
	// follows Message unless the code has a title of its own.
	Type, Message string
	// NumericCode writes the code, a Meta code such as "131056", as a JSON number.
	NumericCode bool
	// Details is the body's details object, or null; empty means {}.
	Details json.RawMessage
	// Omit names fields of the body (ErrorFields) to leave out.
	Omit []string
}

// ErrorFields are the fields of an error body (reference 4.1), in the order the fake writes
// them: the names Rule.Omit and Fate.Omit take.
var ErrorFields = []string{"message", "type", "code", "userTitle", "userMessage", "cntTraceId", "details"}

// apply sets the fields on e, the error a code or status gives.
func (f errorParts) apply(e apiError) apiError {
	if f.Type != "" {
		e.Type = f.Type
	}
	if f.Message != "" {
		e.Message = f.Message
	}
	e.Details, e.NumericCode, e.Omit = f.Details, f.NumericCode, f.Omit
	return e
}

// validate reports fields that make no sense with code, the error's code.
func (f errorParts) validate(code string) error {
	switch {
	case len(f.Details) > 0 && !json.Valid(f.Details):
		return errors.New("details is not valid JSON")
	case len(f.Details) > 0 && !isObject(f.Details) && !isNull(f.Details):
		return errors.New("details must be a JSON object or null")
	case f.NumericCode && !numericCode(code):
		return fmt.Errorf("numericCode needs a code that is a non-negative integer without leading zeros, such as Meta's 131056; got %q", code)
	}
	for _, name := range f.Omit {
		if !slices.Contains(ErrorFields, name) {
			return fmt.Errorf("omit %q: want fields of the error body, %s", name, choice(ErrorFields))
		}
	}
	return nil
}

// isNull reports whether raw is the JSON null.
func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// deliveryError is the error of a delivery_failed event that fails with code (empty:
// ERROR_CODE_UNSPECIFIED) and the fields f: the body codeError gives a send answered with
// that code, so an event and an answer with one code carry one body.
func deliveryError(code string, f errorParts) apiError {
	return f.apply(codeError(cmp.Or(code, CodeUnspecified), 0))
}

// codeInfo says how a Rule.Code is answered: the body type, the HTTP status and the message.
type codeInfo struct {
	Type    string
	Status  int
	Message string
}

// codeTable covers every code of the provider reference, section 4.3, with messages
// paraphrased from the documented meanings. (inferred) The type and HTTP status of each:
// the reference pairs only ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW with
// ERROR_TYPE_DEADLINE_EXCEEDED and ERROR_CODE_UNSPECIFIED with ERROR_TYPE_UNSPECIFIED (4.2),
// and documents no HTTP status per code (10.2). The fake answers 400 INVALID_REQUEST for the
// request and account codes (the api-reference's 400 for "invalid field values"), 500 for
// ERROR_CODE_UNSPECIFIED ("internal error"), and 401 AUTHENTICATION for
// ERROR_CODE_BUSINESS_KEY_SECRET_ABSENT (a key problem, like the documented 401);
// ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW is a 400 although 1 warns that a
// DEADLINE_EXCEEDED may come as a gRPC-style 504 (Config.WindowAnswer plays that). Codes not
// listed (Meta numeric codes, future codes) are answered, (inferred) as well, as
// ERROR_TYPE_INVALID_REQUEST with HTTP 400.
var codeTable = map[string]codeInfo{
	"ERROR_CODE_INVALID_SENDER_ID":                           {TypeInvalidRequest, 400, "The sender phone number is not valid"},
	"ERROR_CODE_PHONE_NUMBER_BAD_FORMAT":                     {TypeInvalidRequest, 400, "The phone number is badly formatted"},
	"ERROR_CODE_MESSAGE_ATTACHMENTS_NUMBER_INVALID":          {TypeInvalidRequest, 400, "A message can carry at most one attachment"},
	"ERROR_CODE_MESSAGE_TEXT_EMPTY":                          {TypeInvalidRequest, 400, "The message text is empty"},
	"ERROR_CODE_MESSAGE_TEMPLATE_NOT_FOUND":                  {TypeInvalidRequest, 400, "No template was found for this name and language; create it and get it approved first"},
	"ERROR_CODE_MESSAGE_TEMPLATE_INPUT_INVALID":              {TypeInvalidRequest, 400, "The template inputs are invalid"},
	"ERROR_CODE_MESSAGE_ATTACHMENT_EMPTY":                    {TypeInvalidRequest, 400, "The attachment URL is empty"},
	"ERROR_CODE_MESSAGE_ATTACHMENT_INVALID":                  {TypeInvalidRequest, 400, "The attachment URL could not be parsed"},
	"ERROR_CODE_BUSINESS_MISSES_MATCHING_CHANNEL":            {TypeInvalidRequest, 400, "The business has no sender channel of the required type"},
	"ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW":       {TypeDeadlineExceeded, 400, "Failed to send a message because more than 24 hours have passed since the customer last replied"},
	"ERROR_CODE_BUSINESS_REACHED_LIMITS":                     {TypeInvalidRequest, 400, "The sender is restricted because too many earlier messages were blocked or flagged as spam"},
	"ERROR_CODE_MESSAGE_SELF_INVALID":                        {TypeInvalidRequest, 400, "This type of message cannot be sent to yourself"},
	"ERROR_CODE_MESSAGE_PHONE_NUMBER_INVALID":                {TypeInvalidRequest, 400, "The recipient phone number is invalid"},
	"ERROR_CODE_MESSAGE_CUSTOMER_OPTED_OUT":                  {TypeInvalidRequest, 400, "The customer opted out of template messages"},
	"ERROR_CODE_MESSAGE_CUSTOMER_NO_CONVERSATION_INITIATION": {TypeInvalidRequest, 400, "The customer has not started a conversation"},
	"ERROR_CODE_BUSINESS_KEY_SECRET_ABSENT":                  {TypeAuthentication, 401, "The business API secret is not initialised; contact Connectly"},
	"ERROR_CODE_MESSAGE_TEMPLATE_DELETED":                    {TypeInvalidRequest, 400, "The template is being deleted"},
	"ERROR_CODE_UNSPECIFIED":                                 {TypeUnspecified, 500, "Internal server error"},
}

// typeTable answers a Rule.Code that names an error type instead of a code, (inferred) with
// the statuses and messages the fake picks for them (only ERROR_TYPE_AUTHENTICATION's 401 is
// documented): the body then
// carries the type and no code of its own, like the documented 401 (Config.UncodedBody
// says how the body writes it).
var typeTable = map[string]codeInfo{
	TypeAuthentication:   {TypeAuthentication, 401, authMessage},
	TypeInvalidRequest:   {TypeInvalidRequest, 400, "The request is invalid"},
	TypeDeadlineExceeded: {TypeDeadlineExceeded, 400, "Failed to send a message because more than 24 hours have passed since the customer last replied"},
	TypeUnspecified:      {TypeUnspecified, 500, "Internal server error"},
	// (inferred) Status and message: no document shows this type; 400 is what a gRPC
	// FAILED_PRECONDITION becomes behind grpc-gateway.
	TypeFailedPrecondition: {TypeFailedPrecondition, 400, "The message cannot be sent now: the customer's 24-hour window is not open"},
}

// codeError builds the answer of a Rule with Code set; status, when not zero, replaces the
// code's usual HTTP status.
func codeError(code string, status int) apiError {
	var e apiError
	if info, ok := typeTable[code]; ok {
		e = apiError{Status: info.Status, Type: info.Type, Message: info.Message}
	} else if info, ok := codeTable[code]; ok {
		e = apiError{Status: info.Status, Type: info.Type, Code: code, Message: info.Message}
		if code == CodeUnspecified {
			// The reference's own pair (4.2, 5.4): "Internal server error" / "Encountered
			// unexpected error".
			e.UserTitle = "Encountered unexpected error"
		}
	} else if strings.HasPrefix(code, "ERROR_TYPE_") {
		e = apiError{Status: 400, Type: code, Message: "The request failed"}
	} else {
		e = apiError{Status: 400, Type: TypeInvalidRequest, Code: code, Message: "Failed to send the message (" + code + ")"}
	}
	if status != 0 {
		e.Status = status
	}
	return e
}

// statusError builds the answer of a Rule with only Status set (an error status), with the
// body shape body ("" for BodyError).
func statusError(status int, body string) apiError {
	var e apiError
	switch {
	case status == http.StatusTooManyRequests:
		e = throttled(body)
	case status == http.StatusUnauthorized:
		e = apiError{Status: status, Type: TypeAuthentication, Message: authMessage}
	case status == http.StatusBadRequest:
		e = apiError{Status: status, Type: TypeInvalidRequest, Message: "Bad Request"}
	case status >= 500:
		e = internalError(status)
	default:
		e = apiError{Status: status, Message: http.StatusText(status)}
	}
	e.Body = body
	return e
}

// internalError is a 5xx answer with Connectly's body for an unexpected failure, word for
// word the error object of the reference's delivery_failed example (5.4): message "Internal
// server error", ERROR_TYPE_UNSPECIFIED, ERROR_CODE_UNSPECIFIED.
func internalError(status int) apiError {
	return apiError{Status: status, Type: TypeUnspecified, Code: CodeUnspecified,
		Message: "Internal server error", UserTitle: "Encountered unexpected error"}
}

// throttled is the 429 answer, with the body shape body ("" for BodyError). The reference
// documents no body for a 429 (sections 4.4 and 8); (inferred) every Connectly error body
// carries a code, ERROR_CODE_UNSPECIFIED when nothing is more specific (4.1), so the JSON
// form has ERROR_TYPE_UNSPECIFIED / ERROR_CODE_UNSPECIFIED, and message "Too Many Requests"
// and userTitle "Rate limit exceeded", the fake's words. No answer carries Retry-After.
func throttled(body string) apiError {
	return apiError{Status: http.StatusTooManyRequests, Type: TypeUnspecified, Code: CodeUnspecified,
		Message: "Too Many Requests", UserTitle: "Rate limit exceeded", Body: body}
}

// unauthorized is the 401 answer to a missing or wrong X-API-Key: the documented status and
// type (1, quick-start), the api-reference's words "Missing or invalid X-API-Key" as the
// message, and no code of its own (none is documented; Config.UncodedBody).
func unauthorized() apiError {
	return apiError{Status: http.StatusUnauthorized, Type: TypeAuthentication, Message: authMessage}
}

// gatewayPage is the non-JSON body of a BodyGateway answer: the short HTML page a reverse
// proxy writes when the service behind it fails or times out.
func gatewayPage(status int) []byte {
	text := http.StatusText(status)
	if status == http.StatusGatewayTimeout {
		text = "Gateway Time-out" // the proxy's spelling
	}
	line := strconv.Itoa(status) + " " + text
	return []byte("<html>\r\n<head><title>" + line + "</title></head>\r\n<body>\r\n<center><h1>" + line +
		"</h1></center>\r\n</body>\r\n</html>\r\n")
}
