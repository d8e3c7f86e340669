package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// campaign send's summary counts every skipped row by reason, also a repeated recipient (the
// ledger plans it skipped(duplicate)), in the text and in --json alike.
func TestCampaignSendSummaryCountsDuplicates(t *testing.T) {
	t.Parallel()
	_, env := miniEnv(t)
	welcome := filepath.Join("..", "..", "configs", "campaigns", "welcome.yaml")
	code, out, errOut := herald(t, env, "campaign", "send", welcome)
	if code != 0 || !strings.Contains(out, "8 rows, 6 recipients queued") ||
		!strings.Contains(out, "  skipped 1 row: duplicate\n  skipped 1 row: invalid_phone\n") {
		t.Fatalf("send: %d %q %s", code, out, errOut)
	}
	code, out, errOut = herald(t, env, "campaign", "send", "--json", welcome)
	var sent struct {
		Rows, Planned int
		Skipped       map[string]int
	}
	if code != 0 || json.Unmarshal([]byte(out), &sent) != nil || sent.Rows != 8 || sent.Planned != 6 ||
		sent.Skipped["duplicate"] != 1 || sent.Skipped["invalid_phone"] != 1 || len(sent.Skipped) != 2 {
		t.Fatalf("send --json: %d %q %s", code, out, errOut)
	}
}

// campaign plan --sample 0 shows no request (0 was read as the default, 3).
func TestCampaignPlanSampleZeroShowsNone(t *testing.T) {
	t.Parallel()
	_, env := miniEnv(t)
	welcome := filepath.Join("..", "..", "configs", "campaigns", "welcome.yaml")
	for _, tc := range []struct {
		sample string
		want   int
	}{{"0", 0}, {"-1", 0}, {"1", 1}, {"", 3}} {
		args := []string{"campaign", "plan", welcome}
		if tc.sample != "" {
			args = append(args, "--sample", tc.sample)
		}
		code, out, errOut := herald(t, env, args...)
		if n := strings.Count(out, "\nRequest "); code != 0 || n != tc.want {
			t.Errorf("plan --sample %q: exit %d, %d requests, want %d: %s", tc.sample, code, n, tc.want, errOut)
		}
	}
}
