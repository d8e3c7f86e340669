package metrics

import (
	"slices"
	"strconv"

	"github.com/heraldmsg/herald/internal/logx"
)

// SenderLabels gives the value of the sender label of every Herald metric that has one
// (herald_sends_total, herald_sender_rate_factor, herald_sender_throttled_share): the sender
// number masked as logs and the CLI mask it (logx.Phone: all but the last 4 characters become
// '*'), so /metrics never shows a number in full.
//
// Two configured senders of the same length can share their last 4 digits, and their masked
// forms would then be one series: a collector would report a duplicate label set (an error for the whole scrape)
// and a counter would merge both senders' sends. Such senders get a suffix instead: "#1",
// "#2", ... in the ascending order of their full numbers, e.g. "********0100#1" and
// "********0100#2". A sender's label changes only when a sender with the same last 4 digits
// is added to or removed from the config. A number not configured (a sender left out of the
// config) is labelled by its masked form alone, or with the suffix "#unlisted" when that form
// is a configured sender's; two such numbers with the same masked form share one series (a
// suffix drawn from the number would give it away), which the operations guide says.
//
// Every component builds its labels from the same configured list (the config's senders), so
// the same sender reads the same in every metric. The zero value labels every number by its
// masked form.
type SenderLabels struct {
	byNumber map[string]string
	// masked holds the masked forms of the configured senders.
	masked map[string]bool
}

// NewSenderLabels returns the labels of the configured sender numbers (duplicates and empty
// strings are ignored; the order does not matter).
func NewSenderLabels(numbers []string) SenderLabels {
	s := SenderLabels{byNumber: make(map[string]string, len(numbers)), masked: make(map[string]bool, len(numbers))}
	sorted := slices.Clone(numbers)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	groups := make(map[string][]string, len(sorted))
	for _, n := range sorted {
		if n == "" {
			continue
		}
		m := logx.Phone(n)
		groups[m] = append(groups[m], n)
		s.masked[m] = true
	}
	for m, ns := range groups {
		if len(ns) == 1 {
			s.byNumber[ns[0]] = m
			continue
		}
		for i, n := range ns {
			s.byNumber[n] = m + "#" + strconv.Itoa(i+1)
		}
	}
	return s
}

// Of returns the label of a sender number.
func (s SenderLabels) Of(number string) string {
	if l, ok := s.byNumber[number]; ok {
		return l
	}
	m := logx.Phone(number)
	if s.masked[m] {
		return m + "#unlisted"
	}
	return m
}
