package connectly_test

import (
	"strings"
	"testing"

	"github.com/heraldmsg/herald/internal/connectly"
)

// The body's variables are {{1}}..{{N}} (reference 7: sequential): the campaign must give
// exactly body_1..body_N, not any N body values; and one header parameter at most.
func TestCompareTemplateMatchesNumbers(t *testing.T) {
	t.Parallel()
	two := connectly.TemplateInfo{Status: "APPROVED", Known: true, BodyVariables: 2}
	img := connectly.TemplateInfo{Status: "APPROVED", Known: true, BodyVariables: 1, HeaderFormat: "IMAGE"}
	for _, tc := range []struct {
		name   string
		t      connectly.TemplateInfo
		params []string
		want   string // a problem holding it; "" none
	}{
		{"exact", two, []string{"body_1", "body_2"}, ""},
		{"gap", two, []string{"body_1", "body_3"}, "missing body_2; not in the body: body_3"},
		{"too few", two, []string{"body_1"}, "missing body_2"},
		{"too many", two, []string{"body_1", "body_2", "body_10"}, "not in the body: body_10"},
		{"two headers", img, []string{"header_text", "header_image", "body_1"}, "header_image and header_text"},
		{"image", img, []string{"header_image", "body_1"}, ""},
		{"text for image", img, []string{"header_text", "body_1"}, "the header is IMAGE, the campaign gives TEXT"},
	} {
		problems := connectly.CheckTemplate(tc.t, tc.params)
		switch {
		case tc.want == "" && len(problems) > 0:
			t.Errorf("%s: problems %q, want none", tc.name, problems)
		case tc.want != "" && (len(problems) != 1 || !strings.Contains(problems[0], tc.want)):
			t.Errorf("%s: problems %q, want one holding %q", tc.name, problems, tc.want)
		}
	}
}

// A media header without a value is a warning, not a problem: the reference does not say a
// send must carry the media.
func TestCompareTemplateMediaHeaderWithoutValue(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"IMAGE", "VIDEO", "DOCUMENT"} {
		tpl := connectly.TemplateInfo{Status: "APPROVED", Known: true, BodyVariables: 1, HeaderFormat: format}
		problems, warnings := connectly.CompareTemplate(tpl, []string{"body_1"})
		if len(problems) != 0 || len(warnings) != 1 || !strings.Contains(warnings[0], "may refuse") {
			t.Errorf("%s: problems %q, warnings %q; want none and one warning", format, problems, warnings)
		}
	}
	// A text header with a variable needs its value: still a problem.
	tpl := connectly.TemplateInfo{Status: "APPROVED", Known: true, BodyVariables: 1, HeaderFormat: "TEXT"}
	if problems, _ := connectly.CompareTemplate(tpl, []string{"body_1"}); len(problems) != 1 {
		t.Errorf("text header without header_text: problems %q, want one", problems)
	}
}
