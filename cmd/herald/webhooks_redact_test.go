package main

import (
	"strings"
	"testing"

	"github.com/heraldmsg/herald/internal/fakeconnectly"
)

// webhooks register never echoes the credentials of the URL it registers: its password, or
// a token in its query.
func TestWebhooksRegisterHidesURLCredentials(t *testing.T) {
	t.Parallel()
	_, base := newFake(t, fakeconnectly.Config{BusinessID: itBusiness, APIKey: itKey})
	env := map[string]string{"CONNECTLY_BASE_URL": base, "CONNECTLY_BUSINESS_ID": itBusiness, "CONNECTLY_API_KEY": itKey}
	const secret = "S3cretPW"
	code, out, errOut := herald(t, env, "webhooks", "register", "--url", "https://herald:"+secret+"@hooks.example.com/connectly")
	if code != 0 {
		t.Fatalf("register exited %d: %s", code, errOut)
	}
	if strings.Contains(out+errOut, secret) || !strings.Contains(out, "https://herald:xxxxx@hooks.example.com/connectly") {
		t.Errorf("register printed %q %q; want the URL with its password as xxxxx", out, errOut)
	}
	const token = "T0kenValue"
	code, out, errOut = herald(t, env, "webhooks", "register", "--url", "https://hooks.example.com/connectly?token="+token)
	if code != 0 || strings.Contains(out+errOut, token) || !strings.Contains(out, "https://hooks.example.com/connectly?token=xxxxx") {
		t.Errorf("register with a query token: exit %d, %q %q; want the URL with the token as xxxxx", code, out, errOut)
	}
	for _, bad := range []string{"ftp://herald:" + secret + "@hooks.example.com/", "https://herald:" + secret + "@hooks.example.com:8x/"} {
		code, out, errOut = herald(t, env, "webhooks", "register", "--url", bad)
		if code != exitUsage || strings.Contains(out+errOut, secret) || !strings.Contains(errOut, "--url") {
			t.Errorf("register --url %s: exit %d, %q %q; want a usage error without the password", bad, code, out, errOut)
		}
	}
}

// webhooks register's help names the flag's value URL, not a word of its description.
func TestWebhooksRegisterHelp(t *testing.T) {
	t.Parallel()
	code, out, errOut := herald(t, nil, "webhooks", "register", "--help")
	if code != 0 {
		t.Fatalf("help exited %d: %s", code, errOut)
	}
	if !strings.Contains(out, "--url URL ") || strings.Contains(out, "`") || strings.Contains(out, "--url herald") {
		t.Errorf("help:\n%s\nwant the flag shown as --url URL", out)
	}
}
