package campaigns_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/heraldmsg/herald/campaigns"
)

// TestAudienceSeekRow reads an audience, remembers the offset after each row, and checks that
// a new reader seeking to any of them continues with exactly the rows that followed.
func TestAudienceSeekRow(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, file, body string }{
		{"CSV", "a.csv", "\xEF\xBB\xBFname,phone\nana,+14155552671\n\"bo,b\",+5511987654321\n\"multi\nline\",+4915112345678\nbad,12\nlast,+14155552672"},
		{"JSONL", "a.jsonl", "\xEF\xBB\xBF{\"name\":\"ana\",\"phone\":\"+14155552671\"}\n\n{\"name\":\"bob\",\"phone\":\"+5511987654321\"}\nnot json\n{\"name\":\"last\",\"phone\":\"+14155552672\"}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, tc.file), []byte(tc.body), 0o644); err != nil {
				t.Fatal(err)
			}
			def := &campaigns.Definition{ID: "c", Path: filepath.Join(dir, "c.yaml"),
				Template: campaigns.Template{Name: "t", Language: "en"}, Audience: campaigns.Audience{File: tc.file, Phone: "phone"}}
			read := func(ar *campaigns.AudienceReader) (rows []campaigns.Row, offs []int64) {
				for {
					r, err := ar.Next()
					if errors.Is(err, io.EOF) {
						return rows, offs
					}
					if err != nil {
						t.Fatal(err)
					}
					rows = append(rows, r)
					offs = append(offs, ar.Offset())
				}
			}
			ar, err := campaigns.OpenAudience(def)
			if err != nil {
				t.Fatal(err)
			}
			all, offs := read(ar)
			ar.Close()
			if len(all) < 4 {
				t.Fatalf("read %d rows", len(all))
			}
			for i := range all {
				ar, err := campaigns.OpenAudience(def)
				if err != nil {
					t.Fatal(err)
				}
				if err := ar.SeekRow(offs[i], all[i].N); err != nil {
					t.Fatal(err)
				}
				rest, _ := read(ar)
				ar.Close()
				if len(rest) != len(all)-i-1 {
					t.Fatalf("after row %d: %d rows, want %d", all[i].N, len(rest), len(all)-i-1)
				}
				for j, r := range rest {
					w := all[i+1+j]
					if r.N != w.N || r.Recipient != w.Recipient || r.Cols["name"] != w.Cols["name"] || r.SkipReason != w.SkipReason {
						t.Fatalf("after row %d: got row %d %q %q, want row %d %q %q", all[i].N, r.N, r.Recipient, r.Cols["name"], w.N, w.Recipient, w.Cols["name"])
					}
				}
			}
			ar, err = campaigns.OpenAudience(def)
			if err != nil {
				t.Fatal(err)
			}
			defer ar.Close()
			if err := ar.SeekRow(1<<40, 3); err == nil {
				t.Error("seeking past the end of the file succeeded")
			}
		})
	}
}
