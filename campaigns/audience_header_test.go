package campaigns_test

import (
	"strings"
	"testing"

	"github.com/heraldmsg/herald/campaigns"
)

// An audience file without a header row: its first line is a customer's, read as column
// names. An error about the header shows nothing of such a line, only where the problem is,
// and says the file may lack its header row; a real header's names are still shown.
func TestAudienceHeaderErrorsShowNoValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, content string
		want          []string // in the error
		hidden        []string // never in the error
	}{
		{"NoHeader", "ana,+1 (415) 555-2671,Pro\nbruno,(212) 555-0143,Team\n",
			[]string{`:1: no "phone" column`, "column 2 of 3", "header row"},
			[]string{"415", "555-2671", "2671", "ana", "Pro", "bruno"}},
		{"NoHeaderNationalNumber", "ana,4155552671,acc-1001\n",
			[]string{`no "phone" column`, "column 2 of 3", "header row"},
			[]string{"2671", "ana", "acc-"}},
		{"NoHeaderEmail", "Ana Souza,ana.souza@example.com\n",
			[]string{`no "phone" column`, "column 2 of 2", "header row"},
			[]string{"Ana", "Souza", "example"}},
		{"NoHeaderDuplicateValue", "Pro,+14155552671,Pro\n",
			[]string{"columns 1 and 3", "header row"},
			[]string{"Pro", "2671"}},
		{"LongName", strings.Repeat("x", 65) + ",name\n",
			[]string{`no "phone" column`, "column 1 of 2"},
			[]string{"xxxx"}},
		{"Settings", "API_KEY=hk_live_value,name\n",
			[]string{`no "phone" column`, "column 1 of 2"},
			[]string{"API_KEY", "hk_live"}},
		{"RealHeader", "name,mobile,plan_2\n+14155552671,ana,Pro\n",
			[]string{`no "phone" column (columns: "name", "mobile", "plan_2")`},
			[]string{"header row", "2671"}},
		{"RealHeaderDuplicate", "phone,name,phone\n",
			[]string{`column "phone" appears twice (columns 1 and 3)`},
			[]string{"header row"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeFile(t, dir, "audience.csv", tc.content)
			def := &campaigns.Definition{Path: writeFile(t, dir, "campaign.yaml", ""),
				Audience: campaigns.Audience{File: "audience.csv", Phone: "phone"}}
			_, err := campaigns.OpenAudience(def)
			wantErrContains(t, err, tc.want...)
			// The file's path is the test's temporary directory, whose random digits may hold
			// any of the hidden values: only what the error says of the file counts.
			said := strings.ReplaceAll(err.Error(), dir, "DIR")
			for _, h := range tc.hidden {
				if strings.Contains(said, h) {
					t.Errorf("error %q shows %q", err, h)
				}
			}
		})
	}
}
