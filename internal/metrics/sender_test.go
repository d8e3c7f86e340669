package metrics

import "testing"

func TestSenderLabels(t *testing.T) {
	t.Parallel()
	s := NewSenderLabels([]string{"+14165550100", "+14155550199", "+14155550100", "+447700900100", "+14155550100", ""})
	for n, want := range map[string]string{
		"+14155550100":  "********0100#1", // the same masked form as +14165550100: ordered by full number
		"+14165550100":  "********0100#2",
		"+447700900100": "*********0100", // one digit longer: its masked form differs
		"+14155550199":  "********0199",
		"+14175550100":  "********0100#unlisted", // not configured, and its masked form is taken
		"+14175550777":  "********0777",
		"":              "",
	} {
		if got := s.Of(n); got != want {
			t.Errorf("Of(%q) = %q, want %q", n, got, want)
		}
	}
	if got := (SenderLabels{}).Of("+14155550100"); got != "********0100" {
		t.Errorf("zero value: %q", got)
	}
}
