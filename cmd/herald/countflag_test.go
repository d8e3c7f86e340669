package main

import (
	"strings"
	"testing"
)

// --limit and --page take a count of 1 or more: 0 and negatives are wrong usage (exit 2),
// said before anything is read. Passed on as they were, --limit 0 listed every entry and -1
// all but the oldest.
func TestCountFlagsRefuseBelowOne(t *testing.T) {
	t.Parallel()
	_, env := miniEnv(t)
	for _, args := range [][]string{
		{"audit", "ls", "--limit", "0"}, {"audit", "ls", "--limit", "-1"},
		{"run", "ls", "--limit", "0"}, {"run", "ls", "--limit=-1"},
		{"campaign", "ls", "--limit", "0"}, {"campaign", "ls", "--limit", "-1"},
		{"task", "ls", "q", "--limit", "0"}, {"task", "ls", "q", "--page", "0"}, {"task", "ls", "q", "--page", "-2"},
		{"run", "ls", "--limit", "many"},
	} {
		code, out, errOut := herald(t, env, args...)
		flag := args[len(args)-2]
		if strings.HasPrefix(args[len(args)-1], "--limit=") {
			flag = "--limit"
		}
		if code != exitUsage || out != "" || !strings.Contains(errOut, flag) || !strings.Contains(errOut, "1 or more") {
			t.Errorf("%v: exit %d %q %q; want exit 2 saying %s wants 1 or more", args, code, out, errOut, flag)
		}
	}
	for _, args := range [][]string{{"audit", "ls", "--limit", "1"}, {"run", "ls", "--limit", "1"}, {"campaign", "ls", "--limit", "1"}} {
		if code, _, errOut := herald(t, env, args...); code != 0 {
			t.Errorf("%v: exit %d %q", args, code, errOut)
		}
	}
}
