package fakeconnectly

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// SessionWindow is how long a customer's inbound message lets the business send session
// messages: 24 hours from the message (reference 3 and 3.1).
const SessionWindow = 24 * time.Hour

// How a session send to a customer whose window is closed is answered (Config.WindowAnswer).
const (
	// WindowAnswerCodes is the default: 400 with the documented codes. A customer who never
	// wrote gets ERROR_CODE_MESSAGE_CUSTOMER_NO_CONVERSATION_INITIATION
	// (ERROR_TYPE_INVALID_REQUEST); one whose last message is 24 hours old or older gets the
	// reference's own example body (4.1): ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW,
	// ERROR_TYPE_DEADLINE_EXCEEDED, "Failed to send a message because more than 24 hours
	// have passed since the customer last replied".
	WindowAnswerCodes = "codes"
	// WindowAnswerOutsideWindow answers both closed windows, never opened and expired, with
	// the reference's example body (400, ERROR_TYPE_DEADLINE_EXCEEDED,
	// ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW): the reading where Connectly does not
	// tell a customer who never wrote from one whose window expired.
	WindowAnswerOutsideWindow = "outside-window"
	// WindowAnswerNoConversation answers both with 400, ERROR_TYPE_INVALID_REQUEST,
	// ERROR_CODE_MESSAGE_CUSTOMER_NO_CONVERSATION_INITIATION: the other such reading.
	WindowAnswerNoConversation = "no-conversation"
	// WindowAnswerDeadline504 answers the expired window with the same body but HTTP 504,
	// the status grpc-gateway's default mapping gives DEADLINE_EXCEEDED (reference 1, inferred
	// there); the never-opened window stays a 400.
	WindowAnswerDeadline504 = "deadline-504"
	// WindowAnswerPrecondition answers both with 400 and ERROR_TYPE_FAILED_PRECONDITION, no
	// code: the form public client code handles (reference 3.1), in no document.
	WindowAnswerPrecondition = "failed-precondition"

	// The answers below take the send as any other and refuse it later: 200 with an id, and
	// then a delivery_failed event (sent, then delivery_failed: the typical order of
	// reference 5.1, as a Fate's delivery_failed) whose statusUpdate.error says the window
	// was closed. Reference 9.3: "Treat a success response (id) as accepted, not delivered;
	// final outcome comes from delivery_status webhooks, where failures arrive as
	// delivery_failed + Connectly error codes", and 9.2 lists Meta's 131047 "Re-engagement:
	// >24 h since last reply (non-template)", which Meta reports after accepting a message.
	// They take both closed windows, never opened and expired, alike (Meta's 131047 does
	// not tell them apart). Such a message is never delivered or read and its reader never
	// replies, whatever the Fates; the rules still apply to its send, as to any send the
	// fake takes. The record flags it (Received.WindowFailure, SentMessage.WindowFailure,
	// Stats.AcceptedOutsideWindow and Stats.WindowFailedAtDelivery).

	// WindowAnswerAtDelivery fails the message with the reference's own example body (4.1):
	// ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW, ERROR_TYPE_DEADLINE_EXCEEDED,
	// "Failed to send a message because more than 24 hours have passed since the customer
	// last replied": the error a synchronous refusal of the expired window carries, as 4.1
	// says statusUpdate.error and a send's error share one shape.
	WindowAnswerAtDelivery = "at-delivery"
	// WindowAnswerAtDelivery131047 fails the message with Meta's code, written as the JSON
	// number 131047 (Meta's form, as Fate.NumericCode writes it), and a message in Meta's
	// "(#code) ..." form (reference 9.2's meaning): the error a Fate with Code "131047",
	// NumericCode and that Message gives. (inferred) Reference 10.4 leaves open whether
	// delivery_failed events carry Meta's codes; the type is the fake's for a code it has no
	// entry for, ERROR_TYPE_INVALID_REQUEST.
	WindowAnswerAtDelivery131047 = "at-delivery-131047"
	// WindowAnswerAtDelivery131047String is WindowAnswerAtDelivery131047 with the code
	// written as the string "131047", in the field 4.1 documents as a string.
	WindowAnswerAtDelivery131047String = "at-delivery-131047-string"
)

// WindowAnswers are the values of Config.WindowAnswer ("" is WindowAnswerCodes), in the
// order a list of them is written.
var WindowAnswers = []string{WindowAnswerCodes, WindowAnswerOutsideWindow, WindowAnswerNoConversation,
	WindowAnswerDeadline504, WindowAnswerPrecondition, WindowAnswerAtDelivery, WindowAnswerAtDelivery131047,
	WindowAnswerAtDelivery131047String}

// CodeMetaReengagement is Meta's code for a free-form message sent more than 24 hours after
// the customer last replied (reference 9.2: 131047 "Re-engagement"), the code of the
// delivery failures of WindowAnswerAtDelivery131047 and WindowAnswerAtDelivery131047String.
const CodeMetaReengagement = "131047"

// metaReengagementMessage is the message of those failures, in the "(#code) ..." form of
// Meta's errors.
const metaReengagementMessage = "(#131047) Re-engagement message: more than 24 hours have passed since the customer last replied"

// Window is what the fake knows of one customer's 24-hour window to one business number.
// On WhatsApp a customer opens a window by writing to one of the business's numbers, and only
// that number may send them session messages (reference 3.1); the fake keeps a window per
// number and answers a session send from its sender's.
type Window struct {
	// Number is the customer: an E.164 number or "bsuid:CC.id".
	Number string `json:"number"`
	// To is the business number the customer wrote to (E.164); "" for a window OpenWindow
	// opened to every number.
	To string `json:"to,omitempty"`
	// LastInbound is the time of the customer's latest inbound message at or before now
	// (zero when none yet).
	LastInbound time.Time `json:"lastInbound"`
	// ClosesAt is LastInbound + SessionWindow (zero when there is no inbound message).
	ClosesAt time.Time `json:"closesAt"`
	// Open reports whether a session message may be sent now: LastInbound <= now < ClosesAt.
	Open bool `json:"open"`
}

// anyNumber is the business number of a window OpenWindow opens to every number.
const anyNumber = ""

// windowStore keeps, per customer and business number, the times of their inbound messages:
// the latest one at or before the clock, and those planned for later (a reply event due after
// a delay). Its mutex is a leaf: it is taken under Server.mu or emitter.mu, and takes no
// other lock.
type windowStore struct {
	mu      sync.Mutex
	inbound map[string]map[string][]time.Time
}

func newWindowStore() *windowStore { return &windowStore{inbound: map[string]map[string][]time.Time{}} }

// customerKey is the form the fake keys a customer by: E.164 as is, a BSUID with its
// "bsuid:" prefix whether it came bare (a session recipient) or prefixed (a template number).
func customerKey(n string) string {
	if !strings.HasPrefix(n, "bsuid:") && validBSUID("bsuid:"+n) {
		return "bsuid:" + n
	}
	return n
}

// businessKey is the form the fake keys a business number by: E.164 with its '+'.
func businessKey(n string) string {
	n = strings.TrimSpace(n)
	if n != "" && !strings.HasPrefix(n, "+") {
		return "+" + n
	}
	return n
}

// validCustomer reports whether n names a customer: E.164, or a BSUID bare or prefixed.
func validCustomer(n string) bool {
	return validE164(n) || validBSUID(customerKey(n))
}

// add records an inbound message from the customer to business number to (anyNumber: to
// every number) at at.
func (ws *windowStore) add(number, to string, at time.Time) {
	k, b := customerKey(number), businessKey(to)
	ws.mu.Lock()
	if ws.inbound[k] == nil {
		ws.inbound[k] = map[string][]time.Time{}
	}
	ws.inbound[k][b] = append(ws.inbound[k][b], at)
	ws.mu.Unlock()
}

// get returns the customer's window for a send from business number to at now: the later of
// their window to that number and one opened to every number. It forgets inbound messages
// older than the latest one at or before now.
func (ws *windowStore) get(number, to string, now time.Time) Window {
	k, b := customerKey(number), businessKey(to)
	ws.mu.Lock()
	defer ws.mu.Unlock()
	w := ws.getLocked(k, b, now)
	if b != anyNumber {
		if every := ws.getLocked(k, anyNumber, now); every.LastInbound.After(w.LastInbound) {
			w = every
		}
	}
	return w
}

// latest returns the customer's latest window at now, to any number.
func (ws *windowStore) latest(number string, now time.Time) Window {
	k := customerKey(number)
	ws.mu.Lock()
	defer ws.mu.Unlock()
	w := Window{Number: k}
	for b := range ws.inbound[k] {
		if o := ws.getLocked(k, b, now); o.LastInbound.After(w.LastInbound) {
			w = o
		}
	}
	return w
}

func (ws *windowStore) getLocked(k, b string, now time.Time) Window {
	w := Window{Number: k, To: b}
	times := ws.inbound[k][b]
	for _, t := range times {
		if !t.After(now) && t.After(w.LastInbound) {
			w.LastInbound = t
		}
	}
	if w.LastInbound.IsZero() {
		return w
	}
	kept := times[:0]
	for _, t := range times {
		if !t.Before(w.LastInbound) {
			kept = append(kept, t)
		}
	}
	ws.inbound[k][b] = kept
	w.ClosesAt = w.LastInbound.Add(SessionWindow)
	w.Open = now.Before(w.ClosesAt)
	return w
}

// all returns every customer's window to each number at now, by number and business number.
func (ws *windowStore) all(now time.Time) []Window {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	var out []Window
	for k, byNumber := range ws.inbound {
		for b := range byNumber {
			out = append(out, ws.getLocked(k, b, now))
		}
	}
	slices.SortFunc(out, func(a, b Window) int {
		return cmp.Or(strings.Compare(a.Number, b.Number), strings.Compare(a.To, b.To))
	})
	return out
}

func (ws *windowStore) clear() {
	ws.mu.Lock()
	ws.inbound = map[string]map[string][]time.Time{}
	ws.mu.Unlock()
}

// OpenWindow records an inbound message from number at at (the zero time means now, on the
// fake's clock) without sending any webhook, to every business number: a shortcut for tests
// that do not care which number the customer wrote to (OpenWindowTo opens one number's).
// number is E.164 or a BSUID ("bsuid:US.123" or bare "US.123"). To open a window the way
// Connectly would, with the messages webhook Herald receives, use Inbound.
func (s *Server) OpenWindow(number string, at time.Time) error {
	return s.OpenWindowTo(number, anyNumber, at)
}

// OpenWindowTo is OpenWindow for a message the customer wrote to business number to (E.164;
// "" opens the window to every number): a session message from another number is outside
// it.
func (s *Server) OpenWindowTo(number, to string, at time.Time) error {
	if !validCustomer(number) {
		return fmt.Errorf("fakeconnectly: open window: %q is neither E.164 nor a BSUID", number)
	}
	if to != anyNumber && !validE164(businessKey(to)) {
		return fmt.Errorf("fakeconnectly: open window: business number %q is not E.164", to)
	}
	if at.IsZero() {
		at = s.clock()
	}
	s.windows.add(number, to, at)
	return nil
}

// WindowOf returns number's latest window now, to any business number, on the fake's clock.
func (s *Server) WindowOf(number string) Window {
	return s.windows.latest(number, s.clock())
}

// WindowTo returns number's window for a send from business number to now, on the fake's
// clock: the one the fake answers a session send from to by.
func (s *Server) WindowTo(number, to string) Window {
	return s.windows.get(number, to, s.clock())
}

// Windows returns every window the fake knows now: per customer who wrote (or had a message
// planned), per business number written to, by number.
func (s *Server) Windows() []Window {
	return s.windows.all(s.clock())
}

// ClearWindows forgets every inbound message: every window is closed and every customer is
// one who never wrote. Reset keeps the windows; this does not touch the record.
func (s *Server) ClearWindows() {
	s.windows.clear()
}

// windowError is the answer to a session send whose recipient's window is closed; everWrote
// tells the expired window from the never-opened one.
//
// The reference documents both codes for a closed window and does not say which comes
// when (3, 3.1: "Outside it: ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW (type
// ERROR_TYPE_DEADLINE_EXCEEDED) or ERROR_CODE_MESSAGE_CUSTOMER_NO_CONVERSATION_INITIATION").
// The fake's guess, WindowAnswerCodes, goes by the documented meanings (4.3 #10 ">24 h since
// customer last wrote", #15 "session API used before customer wrote first"): the
// never-opened window is NO_CONVERSATION_INITIATION and the expired one
// OUTSIDE_OF_ELIGIBILITY_WINDOW. WindowAnswerOutsideWindow and WindowAnswerNoConversation
// pick one code for both.
func (s *Server) windowError(everWrote bool) apiError {
	switch {
	case s.windowAnswer == WindowAnswerPrecondition:
		return codeError(TypeFailedPrecondition, 0)
	case s.windowAnswer == WindowAnswerNoConversation:
		return codeError(CodeNoConversation, 0)
	case s.windowAnswer == WindowAnswerOutsideWindow:
		return codeError(CodeOutsideWindow, 0)
	case !everWrote:
		return codeError(CodeNoConversation, 0)
	case s.windowAnswer == WindowAnswerDeadline504:
		return codeError(CodeOutsideWindow, 504)
	}
	return codeError(CodeOutsideWindow, 0)
}

// windowFailure is the error of the delivery_failed event of a session message accepted
// outside its recipient's window, and true, when Config.WindowAnswer fails such messages at
// delivery; the zero apiError and false when it refuses their sends (windowError). The
// error is built as a Fate's with the same fields would be (deliveryError).
func (s *Server) windowFailure() (apiError, bool) {
	switch s.windowAnswer {
	case WindowAnswerAtDelivery:
		return deliveryError(CodeOutsideWindow, errorParts{}), true
	case WindowAnswerAtDelivery131047:
		return deliveryError(CodeMetaReengagement, errorParts{Message: metaReengagementMessage, NumericCode: true}), true
	case WindowAnswerAtDelivery131047String:
		return deliveryError(CodeMetaReengagement, errorParts{Message: metaReengagementMessage}), true
	}
	return apiError{}, false
}

// remove forgets one inbound message from the customer to business number to at at (one
// planned and then dropped).
func (ws *windowStore) remove(number, to string, at time.Time) {
	k, b := customerKey(number), businessKey(to)
	ws.mu.Lock()
	defer ws.mu.Unlock()
	times := ws.inbound[k][b]
	if i := slices.IndexFunc(times, func(t time.Time) bool { return t.Equal(at) }); i >= 0 {
		ws.inbound[k][b] = slices.Delete(times, i, i+1)
	}
	if len(ws.inbound[k][b]) == 0 {
		delete(ws.inbound[k], b)
	}
	if len(ws.inbound[k]) == 0 {
		delete(ws.inbound, k)
	}
}
