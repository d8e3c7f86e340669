package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/conversation"
)

// campaign validate checks on_reply's buttons against the template's quick-reply buttons
// from get/templates when the API is reachable, and says so when it is not.
func TestCampaignValidateOnReplyButtons(t *testing.T) {
	t.Parallel()
	file := filepath.Join("..", "..", "configs", "campaigns", "spring-promo-replies.yaml")
	listing := func(buttons ...string) string {
		var bs []string
		for _, b := range buttons {
			bs = append(bs, `{"type":"QUICK_REPLY","text":"`+b+`"}`)
		}
		return `{"entity":{"templateGroups":[{"name":"spring_promo","templates":[{"language":{"code":"en_US"},` +
			`"externalTemplate":{"whatsapp":{"components":[{"type":"BUTTONS","buttons":[` + strings.Join(bs, ",") + `]}]}}}]}]}}`
	}
	answer := listing("Yes, show me", "Not now", "Unsubscribe")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(answer))
	}))
	t.Cleanup(srv.Close)
	env := map[string]string{"CONNECTLY_BASE_URL": srv.URL, "CONNECTLY_BUSINESS_ID": "biz", "CONNECTLY_API_KEY": "key-0123456789abcdef"}
	if code, out, errOut := herald(t, env, "campaign", "validate", file); code != 0 || strings.Contains(out, "note:") {
		t.Fatalf("buttons present: exit %d out %q err %q", code, out, errOut)
	}
	code, out, _ := herald(t, nil, "campaign", "validate", file)
	if code != 0 || !strings.Contains(out, "note: "+file+`:30:15: on_reply.rules[0].button: "Unsubscribe": not checked: `) ||
		!strings.Contains(out, "the buttons of template spring_promo (en_US) could not be read: no Connectly business id or API key configured") {
		t.Fatalf("no API: exit %d out %q", code, out)
	}
	srv2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(listing("Yes, show me")))
	}))
	t.Cleanup(srv2.Close)
	env["CONNECTLY_BASE_URL"] = srv2.URL
	code, out, _ = herald(t, env, "campaign", "validate", file)
	if code == 0 || !strings.Contains(out, file+`:30:15: on_reply.rules[0].button: "Unsubscribe": not a quick-reply button`) {
		t.Fatalf("missing buttons: exit %d out %q", code, out)
	}

	// A listing that holds no template at all (the business has none yet, or the local fake,
	// which takes every template and lists none) cannot say what a template offers: the
	// buttons are noted as not checked.
	empty := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"entity":{"templateGroups":[]}}`))
	}))
	t.Cleanup(empty.Close)
	env["CONNECTLY_BASE_URL"] = empty.URL
	code, out, _ = herald(t, env, "campaign", "validate", file)
	if code != 0 || !strings.Contains(out, "not checked: ") || !strings.Contains(out, "Connectly lists no templates for this business") {
		t.Fatalf("empty listing: exit %d out %q", code, out)
	}

	// A listing that fails (Connectly's 503 with its error body) cannot say what a template
	// offers: the buttons are noted as not checked, and nothing is refused for it, so a
	// scheduled run is not held up by get/templates.
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"message":"Internal server error","type":"ERROR_TYPE_UNSPECIFIED","code":"ERROR_CODE_UNSPECIFIED"}`))
	}))
	t.Cleanup(failing.Close)
	env["CONNECTLY_BASE_URL"] = failing.URL
	code, out, _ = herald(t, env, "campaign", "validate", file)
	if code != 0 || !strings.Contains(out, "not checked: ") || !strings.Contains(out, "could not be read") {
		t.Fatalf("failing listing: exit %d out %q", code, out)
	}

	// A listing without the template says so, rather than that the template has no
	// buttons; and campaign send refuses the file as validate does, before a run starts.
	srv3 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(strings.Replace(listing("Yes"), `"spring_promo"`, `"autumn_promo"`, 1)))
	}))
	t.Cleanup(srv3.Close)
	env["CONNECTLY_BASE_URL"] = srv3.URL
	code, out, _ = herald(t, env, "campaign", "validate", file)
	if code != exitError || !strings.Contains(out, "template spring_promo (en_US) is not listed by Connectly") || strings.Contains(out, "has none") {
		t.Fatalf("template not listed: exit %d out %q", code, out)
	}
	m, menv := miniEnv(t)
	for k, v := range env {
		menv[k] = v
	}
	code, out, errOut := herald(t, menv, "campaign", "send", file)
	if code != exitError || out != "" || !strings.Contains(errOut, file+`:30:15: on_reply.rules[0].button: "Unsubscribe"`) ||
		!strings.Contains(errOut, "template spring_promo (en_US) is not listed by Connectly") {
		t.Fatalf("send of a file validate refuses: exit %d out %q err %q", code, out, errOut)
	}
	if keys := m.Keys(); len(keys) != 0 {
		t.Fatalf("send refused, yet Redis holds %v", keys)
	}
	// campaign submit refuses it too: a scheduled run would send it every night.
	code, out, errOut = herald(t, menv, "campaign", "submit", file)
	if code != exitError || out != "" || !strings.Contains(errOut, "not submitted: ") ||
		!strings.Contains(errOut, file+`:30:15: on_reply.rules[0].button: "Unsubscribe"`) {
		t.Fatalf("submit of a file validate refuses: exit %d out %q err %q", code, out, errOut)
	}
	if keys := m.Keys(); len(keys) != 0 {
		t.Fatalf("submit refused, yet Redis holds %v", keys)
	}
	// With the buttons listed, submit and send go ahead, as validate does.
	menv["CONNECTLY_BASE_URL"] = srv.URL
	if code, out, errOut := herald(t, menv, "campaign", "submit", file); code != 0 || !strings.Contains(out, "submitted as version 1") {
		t.Fatalf("submit: exit %d out %q err %q", code, out, errOut)
	}
	menv["CONNECTLY_BASE_URL"] = srv.URL
	if code, out, errOut := herald(t, menv, "campaign", "send", file); code != 0 || !strings.Contains(out, "started") {
		t.Fatalf("send: exit %d out %q err %q", code, out, errOut)
	}
	// The template loses a button after the submit: campaign run checks again and starts no
	// run; put right, it starts one.
	queued := func() int {
		n := 0
		for _, k := range m.Keys() {
			if strings.HasPrefix(k, "asynq:") && strings.Contains(k, ":t:spring-promo-replies-") {
				n++
			}
		}
		return n
	}
	before := queued()
	menv["CONNECTLY_BASE_URL"] = srv2.URL
	code, out, errOut = herald(t, menv, "campaign", "run", "spring-promo-replies")
	if code != exitError || out != "" || !strings.Contains(errOut, "no run started: ") ||
		!strings.Contains(errOut, `on_reply.rules[0].button: "Unsubscribe": not a quick-reply button`) {
		t.Fatalf("run of a campaign whose template lost a button: exit %d out %q err %q", code, out, errOut)
	}
	if n := queued(); n != before {
		t.Fatalf("run refused, yet %d run tasks were queued", n-before)
	}
	menv["CONNECTLY_BASE_URL"] = srv.URL
	if code, out, errOut := herald(t, menv, "campaign", "run", "spring-promo-replies"); code != 0 || !strings.Contains(out, "enqueued") {
		t.Fatalf("run: exit %d out %q err %q", code, out, errOut)
	}
	if n := queued(); n != before+1 {
		t.Fatalf("%d run tasks queued by campaign run, want 1", n-before)
	}
}

// campaign plan --json carries each rule's follow-up (conversation.PlanFollowups renders
// them), in the campaign's order.
func TestCampaignPlanFollowups(t *testing.T) {
	t.Parallel()
	file := filepath.Join("..", "..", "configs", "campaigns", "spring-promo-replies.yaml")
	code, out, errOut := herald(t, nil, "campaign", "plan", "--json", file)
	if code != 0 {
		t.Fatalf("exit %d err %q", code, errOut)
	}
	var p struct {
		Followups []conversation.FollowupPlan `json:"followups"`
	}
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatal(err)
	}
	var rules []string
	for _, f := range p.Followups {
		rules = append(rules, f.Rule)
	}
	if want := []string{"unsubscribe", "interested", "later", "price", "replied"}; !slices.Equal(rules, want) {
		t.Fatalf("follow-ups of rules %q, want %q", rules, want)
	}
	if r := p.Followups[1].Requests; len(r) != 1 || !strings.Contains(string(r[0].Body), `"RUN~interested"`) {
		t.Fatalf("interested: %+v", p.Followups[1])
	}
}

// campaign validate refuses a rule reading a column the audience does not have, with the
// rule's position, before any run is started.
func TestCampaignValidateReplyColumns(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join("..", "..", "configs", "campaigns", "spring-promo-replies.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	csv, err := os.ReadFile(filepath.Join("..", "..", "configs", "campaigns", "spring-promo.csv"))
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(src), `Prices start at $9`, `Prices start at $9, {{ .nickname }}`, 1)
	if bad == string(src) {
		t.Fatal("the example campaign changed: no price rule text to edit")
	}
	for name, body := range map[string]string{"good.yaml": string(src), "bad.yaml": bad, "spring-promo.csv": string(csv)} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if code, out, errOut := herald(t, nil, "campaign", "validate", filepath.Join(dir, "good.yaml")); code != 0 {
		t.Fatalf("good: exit %d out %q err %q", code, out, errOut)
	}
	code, out, errOut := herald(t, nil, "campaign", "validate", filepath.Join(dir, "bad.yaml"))
	if code == 0 || !strings.Contains(out+errOut, `"nickname"`) || !strings.Contains(out+errOut, "bad.yaml:") {
		t.Fatalf("bad: exit %d out %q err %q", code, out, errOut)
	}
}
