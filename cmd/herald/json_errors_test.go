package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/campaigns"
)

// jsonError is what a command refused under --json prints on stdout.
type jsonError struct {
	Error    string                 `json:"error"`
	Problems []campaigns.FieldError `json:"problems"`
}

// welcomeWith writes the welcome campaign beside audience (its CSV) in a new folder, with
// extra appended to the file, and returns the campaign file's path.
func welcomeWith(t *testing.T, audience, extra string) string {
	t.Helper()
	dir := t.TempDir()
	yml, err := os.ReadFile(filepath.Join("..", "..", "configs", "campaigns", "welcome.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "welcome.csv"), []byte(audience), 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "welcome.yaml")
	if err := os.WriteFile(file, append(yml, extra...), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestJSONErrors: a command refused under --json still prints one JSON object on stdout, the
// error and, for a campaign file's problems, each with its place, keeping its exit code and
// its stderr line; a command that prints its own JSON on failure (validate, plan) prints
// that alone.
func TestJSONErrors(t *testing.T) {
	t.Parallel()
	_, env := miniEnv(t)
	// refused runs herald with args and reads the JSON object on its stdout.
	refused := func(t *testing.T, args ...string) (code int, got jsonError, stderr string) {
		t.Helper()
		code, out, stderr := herald(t, env, args...)
		oneJSON(t, out, &got)
		return code, got, stderr
	}

	t.Run("SendRefusedForInvalidRows", func(t *testing.T) {
		t.Parallel()
		file := welcomeWith(t, "first_name,phone,plan,account_id\na,+14155552671,Pro,1\nb,12,Pro,2\nc,34,Pro,3\n", "")
		code, got, errOut := refused(t, "campaign", "send", "--json", file)
		if code != exitError || !strings.Contains(got.Error, "max_invalid_share") || !strings.Contains(errOut, "herald: ") ||
			!strings.Contains(errOut, "max_invalid_share") {
			t.Fatalf("exit %d, stdout %+v, stderr %q; want exit 1 and the refusal on both", code, got, errOut)
		}
	})

	t.Run("SendRefusedForProblemsInTheFile", func(t *testing.T) {
		t.Parallel()
		file := welcomeWith(t, "first_name,phone,plan,account_id\na,+14155552671,Pro,1\n", "expire_after: soon\n")
		code, got, errOut := refused(t, "campaign", "send", "--json", file)
		want := campaigns.FieldError{File: file, Line: 22, Column: 15, Field: "expire_after", Msg: `"soon" is not a positive duration (e.g. 6h, 90m, 2d)`}
		if code != exitError || got.Error == "" || len(got.Problems) != 1 || got.Problems[0] != want || !strings.Contains(errOut, "expire_after") {
			t.Fatalf("exit %d, stdout %+v, stderr %q; want exit 1 and the problem %+v", code, got, errOut, want)
		}
	})

	t.Run("RetryWithNothingToRetry", func(t *testing.T) {
		t.Parallel()
		code, out, errOut := herald(t, env, "campaign", "send", "--json", filepath.Join("..", "..", "configs", "campaigns", "welcome.yaml"))
		var started struct {
			Run string `json:"run"`
		}
		if code != 0 || json.Unmarshal([]byte(out), &started) != nil {
			t.Fatalf("send: %d %q %s", code, out, errOut)
		}
		code, got, errOut := refused(t, "run", "retry", started.Run, "--json")
		if code != exitError || got.Error == "" || !strings.Contains(errOut, "herald: "+got.Error) {
			t.Fatalf("exit %d, stdout %+v, stderr %q; want exit 1 and the same error on both", code, got, errOut)
		}
	})

	t.Run("UsageErrorKeepsItsExitCode", func(t *testing.T) {
		t.Parallel()
		code, got, errOut := refused(t, "run", "retry", "R1", "--class", "sometimes", "--json")
		if code != exitUsage || !strings.Contains(got.Error, "--class") || !strings.Contains(errOut, "--class") {
			t.Fatalf("exit %d, stdout %+v, stderr %q; want exit 2 and the usage error on both", code, got, errOut)
		}
	})

	t.Run("ArgCountNamesTheUsage", func(t *testing.T) {
		t.Parallel()
		code, got, errOut := refused(t, "recipient", "explain", "R1", "--json")
		want := "recipient explain: needs RUN PHONE|bsuid:BSUID, got 1 argument (usage: herald recipient explain RUN PHONE|bsuid:BSUID)"
		if code != exitUsage || got.Error != want || errOut != "herald: "+want+"\n" {
			t.Fatalf("exit %d, stdout %+v, stderr %q; want exit 2 and %q on both", code, got, errOut, want)
		}
	})

	t.Run("WithoutJSONStdoutStaysEmpty", func(t *testing.T) {
		t.Parallel()
		code, out, errOut := herald(t, env, "run", "retry", "R1", "--class", "sometimes")
		if code != exitUsage || out != "" || !strings.Contains(errOut, "--class") {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
	})

	t.Run("ValidatePrintsItsOwnJSONOnly", func(t *testing.T) {
		t.Parallel()
		bad := filepath.Join("..", "..", "campaigns", "testdata", "broken", "bad-category.yaml")
		code, out, _ := herald(t, env, "campaign", "validate", "--json", bad)
		var res []validateResult
		oneJSON(t, out, &res)
		if code != exitError || len(res) != 1 || res[0].OK {
			t.Fatalf("exit %d, results %+v", code, res)
		}
	})

	t.Run("PlanPrintsItsOwnJSONOnly", func(t *testing.T) {
		t.Parallel()
		file := welcomeWith(t, "first_name,phone,plan,account_id\na,+14155552671,Pro,1\nb,12,Pro,2\nc,34,Pro,3\n", "")
		code, out, _ := herald(t, env, "campaign", "plan", "--json", file)
		var plan map[string]any
		oneJSON(t, out, &plan)
		if code != exitError || plan["rows"] == nil {
			t.Fatalf("exit %d, plan %v", code, plan)
		}
	})
}

// TestIsTerminalSeesThroughTheOutputGuard: a command asks whether its stdout is a terminal
// through the guard run wraps it in (a character device here: /dev/null, as a terminal is).
func TestIsTerminalSeesThroughTheOutputGuard(t *testing.T) {
	t.Parallel()
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	if !isTerminal(f) {
		t.Skipf("%s is not a character device here", os.DevNull)
	}
	if !isTerminal(&outputGuard{w: f}) {
		t.Fatal("the guard hides the character device underneath")
	}
	if isTerminal(&outputGuard{w: &bytes.Buffer{}}) {
		t.Fatal("a buffer reads as a terminal")
	}
}

// TestOneShotCommandsKeepLogsOutOfTheirOutput: at the default log level, campaign send and run
// retry print their own report and no log lines (the expansion's "expansion finished");
// log.level debug asks for them.
func TestOneShotCommandsKeepLogsOutOfTheirOutput(t *testing.T) {
	t.Parallel()
	_, env := miniEnv(t)
	defaultLevel := map[string]string{"HERALD_REDIS_URL": env["HERALD_REDIS_URL"]}
	debug := map[string]string{"HERALD_REDIS_URL": env["HERALD_REDIS_URL"], "HERALD_LOG_LEVEL": "debug"}
	file := filepath.Join("..", "..", "configs", "campaigns", "welcome.yaml")
	code, out, errOut := herald(t, defaultLevel, "campaign", "send", file)
	if code != 0 || !strings.Contains(out, "started: 8 rows") || errOut != "" {
		t.Fatalf("send: exit %d, stdout %q, stderr %q; want the report alone", code, out, errOut)
	}
	run := strings.Fields(out)[1]
	code, _, errOut = herald(t, defaultLevel, "run", "retry", run, "--class", "any")
	if strings.Contains(errOut, `"level"`) || strings.Contains(errOut, "expansion finished") {
		t.Fatalf("retry: exit %d, stderr %q; want no log lines", code, errOut)
	}
	code, _, errOut = herald(t, debug, "campaign", "send", file)
	if code != 0 || !strings.Contains(errOut, "expansion finished") {
		t.Fatalf("send at log.level debug: exit %d, stderr %q; want the expansion's log lines", code, errOut)
	}
}
