package campaigns

import (
	"strings"
	"testing"
)

// TestLoadZoneTakesOnlyAZonesOwnSpelling: time.LoadLocation accepts endless spellings of one
// zone, each loading a zone table of its own; from an audience's time zone column they made
// the process-wide cache grow by about 4.6 KB a row, without end. Only the zone's own name is
// taken now, and the cache is bounded.
func TestLoadZoneTakesOnlyAZonesOwnSpelling(t *testing.T) {
	if _, err := LoadZone("America/New_York"); err != nil {
		t.Skipf("no zone database here: %v", err)
	}
	for _, name := range []string{"America/./New_York", "America//New_York", "America/New_York/", "./America/New_York",
		"America/Chicago/../New_York", "/usr/share/zoneinfo/America/New_York", "../zoneinfo/America/New_York"} {
		if _, err := LoadZone(name); err == nil {
			t.Errorf("LoadZone(%q) accepted another spelling of a zone", name)
		}
	}
	before := zoneCached.Load()
	for i := range 50 {
		_, _ = LoadZone("America/" + strings.Repeat("./", i+1) + "New_York")
	}
	if grown := zoneCached.Load() - before; grown != 0 {
		t.Errorf("the zone cache grew by %d entries on refused spellings", grown)
	}
	if zoneCached.Load() > maxCachedZones {
		t.Errorf("the zone cache holds %d entries, more than %d", zoneCached.Load(), maxCachedZones)
	}
}
