package main

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/internal/fakeconnectly"
)

// writeFiles writes files (name: content) into a new folder and returns it.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// campaign plan --check-templates checks each on_reply rule's template, and only warns of a
// media header given no value (the reference does not say a send must carry it); parameters
// no template takes are refused before it asks.
func TestCampaignPlanCheckTemplatesExactly(t *testing.T) {
	t.Parallel()
	fake, err := fakeconnectly.New(fakeconnectly.Config{BusinessID: "biz", APIKey: "key", Templates: []fakeconnectly.Template{
		{Name: "promo", Language: "en", Body: "Hi {{1}}, use {{2}}."},
		{Name: "img", Language: "en", Header: "IMAGE", Body: "Hi {{1}}."},
		{Name: "btn", Language: "en", Body: "Hi {{1}}."},
	}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(fake.Handler())
	defer srv.Close()
	env := map[string]string{"CONNECTLY_BASE_URL": srv.URL, "CONNECTLY_BUSINESS_ID": "biz", "CONNECTLY_API_KEY": "key"}
	const head = "sender: \"+14155550100\"\naudience: {file: b.csv}\n"
	dir := writeFiles(t, map[string]string{
		"b.csv": "phone,first_name,ref\n+14155552671,Ana,x\n+14155552672,Bob,y\n",
		"gap.yaml": "id: gap\n" + head + "template: {name: promo, language: en}\n" +
			"parameters: {body_1: \"{{ .first_name }}\", body_3: \"{{ .ref }}\"}\n",
		"hdr.yaml": "id: hdr\n" + head + "template: {name: img, language: en}\n" +
			"parameters: {header_text: Hello, header_image: \"https://cdn.example.com/a.png\", body_1: \"{{ .first_name }}\"}\n",
		"fut.yaml": "id: fut\n" + head + "template: {name: btn, language: en}\nparameters: {body_1: \"{{ .first_name }}\"}\n" +
			"on_reply:\n  - name: more\n    keyword: more\n    template: {name: promo}\n    parameters: {body_1: \"{{ .first_name }}\"}\n",
		"raw.yaml": "id: raw\n" + head + "template: {name: promo, language: en}\n" +
			"parameters:\n  body_1: \"{{ .first_name }}\"\n  raw:\n    - {name: body_2, value: \"{{ .ref }}\"}\n",
		"img.yaml": "id: img\n" + head + "template: {name: img, language: en}\nparameters: {body_1: \"{{ .first_name }}\"}\n",
	})
	// A gap in the body numbers and two headers match no template at all: the campaign file
	// is refused before Connectly is asked (connectly.CompareTemplate's own tests cover the
	// check against a listed template).
	for _, tc := range []struct{ file, want string }{
		{"gap.yaml", "parameters.body_3: body_2 is not given, body_3 is"},
		{"hdr.yaml", "parameters.header_image: a template has one header, and header_text is given too"},
	} {
		code, out, errOut := herald(t, env, "campaign", "plan", "--check-templates", filepath.Join(dir, tc.file))
		if code != exitError || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: exit %d, want %d and %q\n%s%s", tc.file, code, exitError, tc.want, out, errOut)
		}
	}
	code, out, errOut := herald(t, env, "campaign", "plan", "--check-templates", filepath.Join(dir, "fut.yaml"))
	if want := "Template       follow-up more: promo (en): PROBLEM: the body has 2 variables"; code != exitError ||
		!strings.Contains(out, want) || !strings.Contains(errOut, "1 template problem:") {
		t.Errorf("fut.yaml: exit %d, want %d and %q\n%s%s", code, exitError, want, out, errOut)
	}
	// The follow-up's check is in --json too.
	code, out, errOut = herald(t, env, "campaign", "plan", "--check-templates", "--json", filepath.Join(dir, "fut.yaml"))
	var p planOutput
	if err := json.Unmarshal([]byte(out), &p); err != nil || code != exitError {
		t.Fatalf("fut --json: exit %d %v\n%s%s", code, err, out, errOut)
	}
	if f := p.FollowupTemplates; len(f) != 1 || f[0].Rule != "more" || f[0].Template != "promo" || f[0].Language != "en" || len(f[0].Problems) != 1 {
		t.Fatalf("follow-up template checks %+v", f)
	}
	// A raw entry named body_2 fills {{2}}, as validation and the docs say.
	code, out, errOut = herald(t, env, "campaign", "plan", "--check-templates", filepath.Join(dir, "raw.yaml"))
	if code != 0 || !strings.Contains(out, "Template       en: APPROVED, parameters match") {
		t.Errorf("raw: exit %d\n%s%s", code, out, errOut)
	}
	// A media header without a value: a warning, and the plan passes.
	code, out, errOut = herald(t, env, "campaign", "plan", "--check-templates", filepath.Join(dir, "img.yaml"))
	if code != 0 || !strings.Contains(out, "WARNING        template img (en): the header is IMAGE") ||
		!strings.Contains(out, "Template       en: APPROVED, parameters match") {
		t.Fatalf("img: exit %d\n%s%s", code, out, errOut)
	}
}
