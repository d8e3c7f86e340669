package expand_test

import (
	"testing"

	"github.com/heraldmsg/herald/expand"
	"github.com/heraldmsg/herald/internal/defstore"
)

// TestStoredVersionKeepsParsing: a check that only a new campaign file gets (an unnamed
// once_per: campaign rule) does not stop a version stored before it from being read, so its
// scheduled ticks, its runs and the replies to them go on after an upgrade.
func TestStoredVersionKeepsParsing(t *testing.T) {
	t.Parallel()
	yaml := []byte("id: promo\ntemplate: {name: promo, language: en_US}\naudience: {file: a.csv}\n" +
		"on_reply:\n  - keyword: price\n    once_per: campaign\n    message: {text: \"From $9\"}\n")
	def, err := expand.Definition(defstore.Submitted{ID: "promo", Version: 1, Path: "/srv/campaigns/promo.yaml", YAML: yaml})
	if err != nil {
		t.Fatalf("Definition of a stored version: %v", err)
	}
	if got := def.OnReply.Rules[0].ID(); got != "r1" {
		t.Fatalf("rule id %q, want r1", got)
	}
}
