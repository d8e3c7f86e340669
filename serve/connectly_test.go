package serve_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/connectly"
	"github.com/heraldmsg/herald/serve"
)

// ErrorTable refuses the overrides loading the config refuses, by the same rules, naming the
// code: one the table would never look up (written in another case, misspelt), or a class
// the code may not take.
func TestErrorTableChecksOverridesAsLoadDoes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		overrides map[string]string
		key, want string
	}{
		{"WindowClosedRetried", map[string]string{"ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW": "transient"},
			"errors.ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW", "a closed 24-hour window is not retried"},
		{"CaseVariant", map[string]string{"HTTP_500": "permanent", "http_500": "transient"},
			"errors.http_500", `(did you mean "HTTP_500"?)`},
		{"Misspelt", map[string]string{"ERROR_CODE_MESSAGE_TEMPLATE_NOT_FOUN": "permanent"},
			"errors.ERROR_CODE_MESSAGE_TEMPLATE_NOT_FOUN", `(did you mean "ERROR_CODE_MESSAGE_TEMPLATE_NOT_FOUND"?)`},
		{"BadClass", map[string]string{"HTTP_500": "sometimes"}, "errors.HTTP_500", `"sometimes"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := config.Default()
			c.Errors = tc.overrides
			_, err := serve.ErrorTable(c)
			var ce *config.Error
			if !errors.As(err, &ce) || ce.Key != tc.key || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ErrorTable = %v, want a *config.Error for %s saying %s", err, tc.key, tc.want)
			}
			if loadErr := config.CheckErrors(tc.overrides); loadErr == nil || loadErr.Error() != err.Error() {
				t.Errorf("CheckErrors = %v, ErrorTable %v: want the same", loadErr, err)
			}
		})
	}

	c := config.Default()
	c.Errors = map[string]string{"ERROR_CODE_MESSAGE_TEMPLATE_INPUT_INVALID": "stop-run", "131051": "permanent", "HTTP_418": "transient"}
	table, err := serve.ErrorTable(c)
	if err != nil {
		t.Fatal(err)
	}
	if got := table.ClassOf("ERROR_CODE_MESSAGE_TEMPLATE_INPUT_INVALID"); got != connectly.ClassStopRun {
		t.Errorf("class of the overridden code = %v, want stop-run", got)
	}
}
