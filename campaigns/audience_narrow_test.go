package campaigns_test

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/campaigns"
)

// streamRows parses a campaign (its audience a.csv or a.jsonl written in a fresh folder) and
// returns what Stream yields for its audience.
func streamRows(t *testing.T, yaml, file, content string) []campaigns.Resolved {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, dir, file, content)
	d, err := campaigns.Parse(filepath.Join(dir, "c.yaml"), []byte(yaml))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	r, err := campaigns.NewRenderer(d)
	if err != nil {
		t.Fatalf("NewRenderer: %v", err)
	}
	ar, err := campaigns.OpenAudience(d)
	if err != nil {
		t.Fatalf("OpenAudience: %v", err)
	}
	defer ar.Close()
	done := make(chan struct{})
	defer close(done)
	var rows []campaigns.Resolved
	for b := range campaigns.Stream(ar, r, done) {
		if b.Err != nil {
			t.Fatalf("Stream: %v", b.Err)
		}
		rows = append(rows, b.Rows...)
	}
	return rows
}

// TestStreamKeepsTheColumnsRead streams a wide audience: each row keeps the columns the
// campaign reads (the recipient's, the language and zone columns, the templates' and the
// follow-ups'), every column when a template reads the row as a whole, and renders as if it
// held them all.
func TestStreamKeepsTheColumnsRead(t *testing.T) {
	t.Parallel()
	const csv = "phone,name,first name,code,tier,lang,tz,city,unused1,unused2\n" +
		"+12015550123,ana,Ana,SPRING,gold,es,Europe/Lisbon,Porto,x,y\n" +
		"+12015550124,bo,Bo,FALL,,,,,x,y\n"
	head := "id: n\ntemplate: {name: t, language: en, languages: [es]}\naudience: {file: a.csv, language: lang, timezone: tz}\n"
	tests := []struct {
		name   string
		params string
		extra  string
		want   []string
		body   []string
	}{
		{name: "Field", params: `{body_1: "{{ .name }}"}`, want: []string{"name"}, body: []string{"ana", "bo"}},
		{name: "IndexedName", params: `{body_1: "{{ index . \"first name\" }}"}`, want: []string{"first name"}, body: []string{"Ana", "Bo"}},
		{name: "RootInsideWith", params: `{body_1: "{{ with .tier }}{{ $.code }}{{ else }}{{ index $ \"code\" | lower }}{{ end }}"}`,
			want: []string{"code", "tier"}, body: []string{"SPRING", "fall"}},
		{name: "Raw", params: "\n  body_1: \"{{ .name }}\"\n  raw: [{name: quick_reply_1, value: \"{{ .code }}\"}]", want: []string{"code", "name"}, body: []string{"ana", "bo"}},
		{name: "FollowUps", params: `{body_1: "{{ .name }}"}`, extra: "on_reply:\n  - any: true\n    message: {text: \"in {{ .city | default \\\"town\\\" }}\"}\n",
			want: []string{"city", "name"}, body: []string{"ana", "bo"}},
		{name: "WholeRow", params: `{body_1: "{{ len . }} {{ .name }}"}`,
			want: []string{"city", "code", "first name", "name", "tier", "unused1", "unused2"}, body: []string{"10 ana", "10 bo"}},
		{name: "ComputedName", params: `{body_1: "{{ index . .tier | default \"none\" }}"}`,
			want: []string{"city", "code", "first name", "name", "tier", "unused1", "unused2"}, body: []string{"none", "none"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rows := streamRows(t, head+"parameters: "+tt.params+"\n"+tt.extra, "a.csv", csv)
			if len(rows) != 2 {
				t.Fatalf("%d rows, want 2", len(rows))
			}
			want := slices.Sorted(slices.Values(append([]string{"phone", "lang", "tz"}, tt.want...)))
			for i, r := range rows {
				if r.RenderErr != nil {
					t.Fatalf("row %d: %v", i+1, r.RenderErr)
				}
				wantEqual(t, fmt.Sprintf("row %d columns", i+1), want, slices.Sorted(maps.Keys(r.Row.Cols)))
				wantEqual(t, fmt.Sprintf("row %d body_1", i+1), tt.body[i], r.Params[0].Value)
			}
			wantEqual(t, "language", "es", rows[0].Row.Language)
			wantEqual(t, "zone", "Europe/Lisbon", rows[0].Row.Cols["tz"])
		})
	}
}

// TestStreamKeepsTheColumnsReadJSONLines does the same for a JSON Lines audience: the other
// keys are dropped, yet a list in one of them still makes the row invalid.
func TestStreamKeepsTheColumnsReadJSONLines(t *testing.T) {
	t.Parallel()
	jsonl := `{"phone": "+12015550123", "name": "ana", "note": "` + strings.Repeat("n", 1000) + `", "n": 3}` + "\n" +
		`{"phone": "+12015550124", "name": "bo", "tags": [1, 2]}` + "\n"
	rows := streamRows(t, "id: n\ntemplate: {name: t, language: en}\naudience: {file: a.jsonl}\nparameters: {body_1: \"{{ .name }}\"}\n", "a.jsonl", jsonl)
	if len(rows) != 2 {
		t.Fatalf("%d rows, want 2", len(rows))
	}
	wantEqual(t, "columns", map[string]string{"phone": "+12015550123", "name": "ana"}, rows[0].Row.Cols)
	wantEqual(t, "second row", "invalid_row", rows[1].Row.SkipReason)
}

// TestReadRowsKeepEveryColumn checks that Next still gives every column: narrowing is the
// plan's and the stream's.
func TestReadRowsKeepEveryColumn(t *testing.T) {
	t.Parallel()
	rows := readRows(t, "a.csv", "phone,a,b\n+12015550123,1,2\n", campaigns.Audience{})
	wantEqual(t, "columns", map[string]string{"phone": "+12015550123", "a": "1", "b": "2"}, rows[0].Cols)
}
