package main

import (
	"strings"
	"testing"
)

// A national number without --region is refused for what it lacks, not for an audience
// setting the command has nothing to do with.
func TestNationalNumberWithoutRegion(t *testing.T) {
	t.Parallel()
	_, env := miniEnv(t)
	for _, args := range [][]string{{"window", "show", "4155552671"}, {"recipient", "explain", "some-run", "4155552671"}} {
		code, _, errOut := herald(t, env, args...)
		if code != exitUsage || !strings.Contains(errOut, "the number has no country code") || strings.Contains(errOut, "default_region") {
			t.Errorf("%v: exit %d, %q; want a usage error naming the missing country code and --region", args, code, errOut)
		}
	}
}
