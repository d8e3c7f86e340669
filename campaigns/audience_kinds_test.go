package campaigns_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/campaigns"
)

// readRows writes an audience file and a definition for it, and returns every row.
func readRows(t *testing.T, name, content string, aud campaigns.Audience, langs ...string) []campaigns.Row {
	t.Helper()
	return readRowsOf(t, name, content, aud, campaigns.Template{Name: "t", Language: "en", Languages: langs})
}

// readRowsOf is readRows for a campaign sending tpl.
func readRowsOf(t *testing.T, name, content string, aud campaigns.Audience, tpl campaigns.Template) []campaigns.Row {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	aud.File = filepath.Join(dir, name)
	if aud.Phone == "" {
		aud.Phone = "phone"
	}
	d := &campaigns.Definition{Path: filepath.Join(dir, "c.yaml"), Audience: aud, Template: tpl}
	ar, err := campaigns.OpenAudience(d)
	if err != nil {
		t.Fatal(err)
	}
	defer ar.Close()
	var rows []campaigns.Row
	for {
		r, err := ar.Next()
		if errors.Is(err, io.EOF) {
			return rows
		}
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, r)
	}
}

func TestAudienceBSUIDAndLanguage(t *testing.T) {
	t.Parallel()
	csv := "phone,bsuid,lang\n" +
		"+14155552671,,pt_BR\n" + // phone wins
		",US.13491208655302741918,es\n" + // BSUID only
		"not-a-number,BR.998877,fr\n" + // bad phone, good BSUID: BSUID; fr is not offered
		",US.bad-id,\n" + // bad BSUID
		",,\n" // nothing
	rows := readRows(t, "a.csv", csv, campaigns.Audience{BSUID: "bsuid", Language: "lang"}, "pt_BR", "es")
	want := []struct{ rcpt, lang, skip string }{
		{"+14155552671", "pt_BR", ""},
		{"bsuid:US.13491208655302741918", "es", ""},
		{"bsuid:BR.998877", "en", ""},
		{"", "en", "invalid_bsuid"},
		{"", "en", "missing_recipient"},
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d", len(rows), len(want))
	}
	for i, w := range want {
		if r := rows[i]; r.Recipient != w.rcpt || r.Language != w.lang || r.SkipReason != w.skip {
			t.Errorf("row %d: recipient %q language %q skip %q; want %q %q %q", i+1, r.Recipient, r.Language, r.SkipReason, w.rcpt, w.lang, w.skip)
		}
	}
}

// A BSUID longer than MaxBSUID is skipped as invalid_bsuid: with it, the callbackData of the
// longest run id would pass Connectly's 1,024 bytes and every send fail. One of MaxBSUID
// characters is sent, and its callbackData fits.
func TestAudienceBSUIDLength(t *testing.T) {
	t.Parallel()
	longest := "US." + strings.Repeat("7", campaigns.MaxBSUID-3)
	csv := "phone,bsuid\n" + "," + longest + "\n" + ",US." + strings.Repeat("1", 1100) + "\n"
	rows := readRows(t, "a.csv", csv, campaigns.Audience{BSUID: "bsuid"})
	if len(rows) != 2 {
		t.Fatalf("%d rows, want 2", len(rows))
	}
	if r := rows[0]; r.SkipReason != "" || r.Recipient != "bsuid:"+longest {
		t.Errorf("row 1: recipient %q skip %q %v", r.Recipient, r.SkipReason, r.Err)
	}
	if r := rows[1]; r.SkipReason != "invalid_bsuid" || r.Err == nil || !strings.Contains(r.Err.Error(), "1103 characters, a BSUID is at most 256") {
		t.Errorf("row 2: recipient %q skip %q %v; want invalid_bsuid", r.Recipient, r.SkipReason, r.Err)
	}
	// The longest run id: a 64-character campaign id, its start time and random part, retried.
	run := strings.Repeat("c", 64) + "-20260101T000000Z-abcdef-retry"
	cb := campaigns.SendPayload{Run: run, To: rows[0].Recipient, Bucket: 1<<24 - 1}.Callback()
	if len(cb) > 1024 {
		t.Errorf("callbackData of the longest BSUID is %d bytes, Connectly takes 1,024", len(cb))
	}
}

// A CSV record with a value past the header's columns (an unquoted comma shifted the row) is
// skipped as invalid_row; a trailing empty field changes nothing and is read.
func TestAudienceCSVExtraField(t *testing.T) {
	t.Parallel()
	csv := "phone,first_name,code\n" +
		"+14155552671,Ana,A1\n" +
		"+14155552672,Bob\n" +
		"+14155552673,Smith, Cy,C1\n" +
		"+14155552674,Di,D1,\n" +
		"+14155552675,Ed,E1, ,\n"
	rows := readRows(t, "a.csv", csv, campaigns.Audience{})
	want := []string{"+14155552671", "+14155552672", "invalid_row", "+14155552674", "+14155552675"}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d", len(rows), len(want))
	}
	for i, w := range want {
		got := rows[i].Recipient
		if rows[i].SkipReason != "" {
			got = rows[i].SkipReason
		}
		if got != w {
			t.Errorf("row %d: %q (%v), want %q", i+1, got, rows[i].Err, w)
		}
	}
	if r := rows[2]; r.N != 3 || r.Line != 4 || r.Err == nil || r.Err.Error() != "a value past the header's columns: 4 fields, the header names 3 (quote a value that holds a comma)" {
		t.Errorf("row 3: n %d line %d err %v", r.N, r.Line, r.Err)
	}
	if c := rows[3].Cols; c["code"] != "D1" || len(c) != 3 {
		t.Errorf("row 4 columns %v", c)
	}
}

// An authentication template cannot go to a BSUID (reference 6, Meta 131062): a row with
// only a BSUID is skipped before any request; a row with a phone is sent to the phone.
func TestAudienceAuthenticationNeedsAPhone(t *testing.T) {
	t.Parallel()
	csv := "phone,bsuid\n" +
		"+14155552671,US.1\n" +
		",US.13491208655302741918\n" +
		"not-a-number,BR.998877\n"
	for _, tc := range []struct {
		category string
		want     []string // recipient or skip reason per row
	}{
		// A bad phone stays the row's problem: the BSUID could not be used anyway.
		{"authentication", []string{"+14155552671", campaigns.SkipBSUIDNotSupported, "invalid_phone"}},
		{"utility", []string{"+14155552671", "bsuid:US.13491208655302741918", "bsuid:BR.998877"}},
	} {
		rows := readRowsOf(t, "a.csv", csv, campaigns.Audience{BSUID: "bsuid"}, campaigns.Template{Name: "otp", Language: "en", Category: tc.category})
		var got []string
		for _, r := range rows {
			if r.SkipReason != "" {
				got = append(got, r.SkipReason)
				if r.SkipReason == campaigns.SkipBSUIDNotSupported && (r.Err == nil || !strings.Contains(r.Err.Error(), "131062")) {
					t.Errorf("%s: skip without the reason: %v", tc.category, r.Err)
				}
				continue
			}
			got = append(got, r.Recipient)
		}
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("%s: rows %q, want %q", tc.category, got, tc.want)
		}
	}
}

func TestAudienceJSONL(t *testing.T) {
	t.Parallel()
	jsonl := `{"phone": "+14155552671", "name": "Ana", "visits": 3, "vip": true}` + "\n" +
		"\n" + // blank lines are not rows
		`{"phone": "+14155552672", "tags": ["x"]}` + "\n" +
		`not json` + "\n" +
		`{"phone": null}` + "\n" +
		`{"phone": "+14155552673"}` // no final newline
	rows := readRows(t, "a.jsonl", jsonl, campaigns.Audience{})
	if len(rows) != 5 {
		t.Fatalf("%d rows, want 5", len(rows))
	}
	if r := rows[0]; r.Recipient != "+14155552671" || r.Cols["name"] != "Ana" || r.Cols["visits"] != "3" || r.Cols["vip"] != "true" || r.Line != 1 {
		t.Errorf("row 1: %+v", r)
	}
	if r := rows[1]; r.SkipReason != "invalid_row" || r.Line != 3 {
		t.Errorf("row 2 (nested value): %+v", r)
	}
	if r := rows[2]; r.SkipReason != "invalid_row" || r.Line != 4 {
		t.Errorf("row 3 (not JSON): %+v", r)
	}
	if r := rows[3]; r.SkipReason != "missing_phone" {
		t.Errorf("row 4 (null phone): %+v", r)
	}
	if r := rows[4]; r.Recipient != "+14155552673" || r.N != 5 || r.Line != 6 {
		t.Errorf("row 5: %+v", r)
	}
}

func TestPlanInvalidShare(t *testing.T) {
	t.Parallel()
	rep := campaigns.PlanReport{Audience: "a.csv", Rows: 100, Skipped: map[string]int{"invalid_phone": 4, "duplicate": 30, "invalid_params": 2},
		Examples: []campaigns.SkippedRow{{Row: 7, Line: 8, Reason: "invalid_phone", Detail: "bad"}}}
	if got := rep.InvalidShare(); got != 0.06 {
		t.Fatalf("InvalidShare = %v, want 0.06 (duplicates do not count)", got)
	}
	if err := rep.CheckInvalidShare(0.06); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	err := rep.CheckInvalidShare(0.05)
	if err == nil || !strings.Contains(err.Error(), "6.0% of 100 rows are invalid") || !strings.Contains(err.Error(), "a.csv:8: row 7: invalid_phone") {
		t.Fatalf("over the limit: %v", err)
	}
}
