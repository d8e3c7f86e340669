package audiencegen_test

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/internal/audiencegen"
)

// plausible accepts the generated shape: +1, a 3-digit area code, a 7-digit number whose
// exchange does not start with 0 or 1; it refuses a few numbers to show they are passed over.
func plausible(num string) bool {
	return len(num) == 12 && strings.HasPrefix(num, "+1") && num[5] >= '2' && !strings.HasSuffix(num, "0007")
}

// An audience has the header and n rows: every 100th row from the 37th an unusable number,
// every 200th from the 99th a repeat of an earlier recipient, the rest distinct numbers the
// validity check accepts; and the same n gives the same audience.
func TestWrite(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if err := audiencegen.Write(&buf, 1000, plausible); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(bytes.NewReader(buf.Bytes())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1001 || strings.Join(rows[0], ",") != audiencegen.Header {
		t.Fatalf("%d lines, header %q", len(rows), rows[0])
	}
	seen := map[string]int{}
	for i, r := range rows[1:] {
		row := i + 1
		phone := r[1]
		switch {
		case row%100 == 37:
			if plausible(phone) {
				t.Errorf("row %d: %q, want an unusable number", row, phone)
			}
		case row%200 == 99:
			if seen[phone] == 0 {
				t.Errorf("row %d: %q repeats no earlier row", row, phone)
			}
		default:
			if !plausible(phone) || seen[phone] > 0 {
				t.Errorf("row %d: %q, want a new valid number", row, phone)
			}
		}
		seen[phone] = row
	}
	if rows[1][2] != "SPRING0001" || rows[1000][2] != "SPRING1000" {
		t.Errorf("coupons %q ... %q", rows[1][2], rows[1000][2])
	}
	var again bytes.Buffer
	if err := audiencegen.Write(&again, 1000, plausible); err != nil || !bytes.Equal(again.Bytes(), buf.Bytes()) {
		t.Errorf("a second audience of 1000 rows differs (%v)", err)
	}
}

// Phones passes over the numbers the check refuses and never yields one twice.
func TestPhones(t *testing.T) {
	t.Parallel()
	g := audiencegen.NewPhones(plausible)
	seen := map[string]bool{}
	for range 5000 {
		n := g.Next()
		if !plausible(n) || seen[n] {
			t.Fatalf("number %q (seen before: %v)", n, seen[n])
		}
		seen[n] = true
	}
}
