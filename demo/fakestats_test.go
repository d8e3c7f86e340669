package demo

import (
	"encoding/json"
	"regexp"
	"testing"
)

// The fake's counts print under snake_case keys, as the rest of `demo --json`, and read back.
func TestFakeStatsSnakeKeys(t *testing.T) {
	in := FakeStats{Requests: 3, SessionsAccepted: 2, AcceptedOutsideWindow: 1, Errors: map[string]int{"ERROR_CODE_UNSPECIFIED": 1}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &keys); err != nil {
		t.Fatal(err)
	}
	snakeKey := regexp.MustCompile(`^[a-z]+(_[a-z]+)*$`)
	for k := range keys {
		if !snakeKey.MatchString(k) {
			t.Errorf("key %q is not snake_case", k)
		}
	}
	if string(keys["accepted_outside_window"]) != "1" || string(keys["errors"]) != `{"ERROR_CODE_UNSPECIFIED":1}` {
		t.Errorf("encoded %s", b)
	}
	var out FakeStats
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.Requests != 3 || out.SessionsAccepted != 2 || out.AcceptedOutsideWindow != 1 || out.Errors["ERROR_CODE_UNSPECIFIED"] != 1 {
		t.Errorf("read back %+v", out)
	}

	w, err := json.Marshal(WebhookStats{GaveUp: 2, ByStatus: map[string]int{"delivery_failed": 1}})
	if err != nil {
		t.Fatal(err)
	}
	var back WebhookStats
	if err := json.Unmarshal(w, &back); err != nil || back.GaveUp != 2 || back.ByStatus["delivery_failed"] != 1 {
		t.Errorf("webhook stats %s read back %+v (%v)", w, back, err)
	}
}
