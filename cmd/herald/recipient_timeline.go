package main

import (
	"fmt"
	"io"
	"time"

	"github.com/heraldmsg/herald/conversation"
	"github.com/heraldmsg/herald/internal/ledger"
	"github.com/heraldmsg/herald/internal/logx"
	"github.com/heraldmsg/herald/internal/report"
)

// A recipient's timeline, as `recipient explain` ends: every event of the story in time order,
// replies included.

// printTimeline prints x's timeline, one event a line; "--" stands for a time Herald does not
// record (a send accepted on its first attempt, the delivery state a send reached).
func printTimeline(w io.Writer, x report.Explanation) {
	fmt.Fprintln(w, "Timeline")
	for _, ev := range x.Timeline {
		at := "--"
		if !ev.At.IsZero() {
			at = ev.At.UTC().Format(time.RFC3339)
		}
		kind := ev.Kind
		if kind == report.EventFollowup {
			kind = "follow-up"
		}
		fmt.Fprintf(w, "  %-20s  %-9s  %s\n", at, kind, timelineWhat(x.Run, ev))
	}
}

// timelineWhat is what one event says.
func timelineWhat(run string, ev report.TimelineEvent) string {
	switch {
	case ev.Kind == report.EventRun:
		return "started"
	case ev.Reply != nil:
		return replyWhat(run, *ev.Reply)
	case ev.Kind == report.EventStatus:
		return "delivery state now " + ev.Outcome
	case ev.Status:
		return ev.Rule + ": delivery state now " + ev.Outcome
	}
	// A skip (window_closed, suppressed...) made no attempt: "attempt 0" would say one was made.
	s := ev.Outcome
	if ev.Attempt > 0 {
		s = fmt.Sprintf("attempt %d: %s", ev.Attempt, ev.Outcome)
	}
	if ev.Code != "" {
		s += " " + ev.Code
		if ev.Class != "" {
			s += " (" + ev.Class + ")"
		}
	}
	if ev.Rule != "" {
		s = ev.Rule + ": " + s
	}
	return s
}

// replyWhat says what the customer did: the button tapped, the row chosen, the words typed.
func replyWhat(run string, r report.Reply) string {
	var s string
	switch r.Kind {
	case conversation.SaidButton:
		s = "tapped " + quotedWithID(r.Text, r.ID)
	case conversation.SaidListRow:
		s = "chose " + quotedWithID(r.Text, r.ID)
	case conversation.SaidText:
		s = fmt.Sprintf("wrote %q", r.Text)
	default:
		s = "sent media or another kind of message"
		if r.Text != "" {
			s += fmt.Sprintf(" with %q", r.Text)
		}
	}
	if _, rule, ok := ledger.FollowupOf(r.Run); ok && r.Run != run {
		s += ", answering follow-up " + rule
	}
	if r.Rule != "" {
		s += " → rule " + r.Rule
	}
	if r.OptOut {
		s += " → opted out"
	}
	if r.Note != "" {
		s += " (" + logx.Escape(r.Note) + ")"
	}
	return s
}

// quotedWithID is a button's or row's text, quoted, with its id when there is one. Both come
// from the customer's message (report.Explain masked their numbers): the text is quoted and
// the id escaped (logx.Escape), so that neither can write control characters to the terminal.
func quotedWithID(text, id string) string {
	switch {
	case text == "":
		return logx.Escape(id)
	case id == "" || id == text:
		return fmt.Sprintf("%q", text)
	}
	return fmt.Sprintf("%q (%s)", text, logx.Escape(id))
}
