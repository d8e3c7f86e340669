package fakeconnectly

import (
	"strings"
	"testing"
)

// TestParseRules: a JSON list of rules (the --faults file) is read as json.Unmarshal reads
// it, and a bad one is refused with the rule's place in the list and, where the error is in
// the file, its line and column, counted from 1.
func TestParseRules(t *testing.T) {
	t.Parallel()
	good := "[\n  {\"percent\": 1, \"salt\": \"a\", \"status\": 503, \"latency\": \"40ms\"},\n  {\"numbers\": [\"+15550000001\"], \"sent\": true, \"status\": 500}\n]\n"
	rules, err := ParseRules([]byte(good))
	if err != nil || len(rules) != 2 || rules[0].Status != 503 || rules[0].Latency.Milliseconds() != 40 || !rules[1].Sent {
		t.Fatalf("good list: %+v, %v", rules, err)
	}
	for _, empty := range []string{"[]", " null ", "[ ]\n"} {
		if rules, err := ParseRules([]byte(empty)); err != nil || len(rules) != 0 {
			t.Errorf("%q: %+v, %v", empty, rules, err)
		}
	}

	for name, tc := range map[string]struct{ file, want string }{
		"UnknownField": {
			"[\n  {\"percent\": 1, \"salt\": \"a\", \"status\": 503},\n  {\"percent\": 2, \"salt\": \"b\"},\n  {\"percent\": 3, \"salt\": \"c\",\n   \"bogus\": true}\n]\n",
			`rules[2]: line 5, column 4: unknown field "bogus"`},
		"UnknownFieldFirstLine": {`[{"percent": 1}, {"statuss": 500}]`, `rules[1]: line 1, column 19: unknown field "statuss"`},
		"WrongType": {
			"[\n {\"percent\": 1},\n {\"salt\": \"x\", \"percent\": \"ten\"}\n]",
			`rules[1]: line 3, column 16: percent: want float64, not a JSON string`},
		"BadLatency":   {"[\n {},\n {},\n  {\"latency\": \"soon\"}]", `rules[2]: line 4, column 3: rule latency: `},
		"MissingComma": {"[\n {\"percent\": 1}\n {\"percent\": 2}\n]", `rules[1]: line 3, column 2: `},
		"BrokenObject": {"[\n {\"percent\": 1 \"salt\": \"x\"}\n]", `rules[0]: line 2, column 16: `},
		"NotAList":     {`{"percent": 1}`, `rules: line 1, column 1: want a JSON list`},
		"Trailing":     {"[]\n[]", `rules: line 2, column 1: more than one JSON value`},
		"Unclosed":     {"[\n {\"percent\": 1}", `rules: line 2, column 16: `},
		"Empty":        {"", `rules: line 1, column 1: `},
		// Columns count characters, not bytes.
		"Unicode": {"[{\"salt\": \"ção\", \"x\": 1}]", `rules[0]: line 1, column 18: unknown field "x"`},
	} {
		_, err := ParseRules([]byte(tc.file))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error starting %q", name, err, tc.want)
		}
	}
}

// TestParseConfigNamesTheRule: a bad rule in a --fake-config file is named by its place in
// "rules" and its line and column in the file, as in a --faults file.
func TestParseConfigNamesTheRule(t *testing.T) {
	t.Parallel()
	file := "{\n  \"businessId\": \"b\",\n  \"rules\": [\n    {\"percent\": 1},\n    {\"percent\": 2, \"bogus\": 1}\n  ]\n}\n"
	_, err := ParseConfig(strings.NewReader(file))
	if err == nil || !strings.Contains(err.Error(), `rules[1]: line 5, column 20: unknown field "bogus"`) {
		t.Errorf("config with a bad rule: %v", err)
	}
	// Other errors keep their words.
	if _, err := ParseConfig(strings.NewReader(`{"webhooks": {"dealy": "1s"}}`)); err == nil || !strings.Contains(err.Error(), "dealy") {
		t.Errorf("unknown webhook knob: %v", err)
	}
}
