package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldmsg/herald/internal/servicewindow"
)

// A location without a coordinate is refused, not sent as a pin at 0,0; 0,0 written out is a
// place and goes.
func TestMessageSendLocationCoordinates(t *testing.T) {
	t.Parallel()
	sb := newSupportBench(t)
	rdb, env := sb.rdb, sb.env
	const to = "+14155552671"
	if _, err := servicewindow.New(rdb, time.Now).Touch(context.Background(), "biz", []string{to}, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, body string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		file, want string
	}{
		{write("nolat.yaml", "location: {longitude: -9.14, name: Store}\n"), "location.latitude: required"},
		{write("nolon.json", `{"location":{"latitude":38.72}}`), "location.longitude: required"},
		{write("none.yaml", "location: {name: Store}\n"), "location.longitude: required"},
	} {
		code, out, errOut := herald(t, env, "message", "send", "--to", to, "--file", tc.file, "--dry-run")
		if code != exitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: exit %d %q %q, want usage error with %q", filepath.Base(tc.file), code, out, errOut, tc.want)
		}
	}
	origin := write("origin.yaml", "location: {latitude: 0, longitude: 0, name: Null Island}\n")
	code, out, errOut := herald(t, env, "message", "send", "--to", to, "--file", origin, "--dry-run")
	if code != 0 || !strings.Contains(out, `"latitude": 0`) || !strings.Contains(out, `"longitude": 0`) {
		t.Fatalf("0,0 written out: exit %d %s %s", code, out, errOut)
	}
}
