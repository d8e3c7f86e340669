package connectly_test

import (
	"strings"
	"testing"

	"github.com/heraldmsg/herald/internal/connectly"
)

// Every key an answer is looked up under takes an override, and so does a code or type of
// Connectly's form the table does not list (the reference's list may go on); any other key,
// and a name of that form a few letters from a listed one, is refused, with the closest known
// key when there is one.
func TestCheckOverrideKey(t *testing.T) {
	t.Parallel()
	for k := range connectly.DefaultTable {
		if err := connectly.CheckOverrideKey(k); err != nil {
			t.Errorf("CheckOverrideKey(%s): %v", k, err)
		}
	}
	for _, k := range []string{"NOT_SENT", "NO_RESPONSE", "HTTP_300", "HTTP_418", "HTTP_599", "0", "131051", "1234567",
		"ERROR_CODE_SOMETHING_NOBODY_WROTE", "ERROR_TYPE_NEW_KIND"} {
		if err := connectly.CheckOverrideKey(k); err != nil {
			t.Errorf("CheckOverrideKey(%s): %v", k, err)
		}
	}
	for k, want := range map[string]string{
		"http_500":                           `did you mean "HTTP_500"`,
		"HTTP-502":                           `did you mean "HTTP_502"`,
		"HTTP_200":                           "a status from 300 to 599",
		"HTTP_5000":                          "a status from 300 to 599",
		"not_sent":                           `did you mean "NOT_SENT"`,
		"ERROR_CODE_INVALID_SENDER":          `did you mean "ERROR_CODE_INVALID_SENDER_ID"`,
		"error_code_message_text_empty":      `did you mean "ERROR_CODE_MESSAGE_TEXT_EMPTY"`,
		"CLIENT_ERROR":                       "not an error code",
		"0131049":                            "not an error code",
		"ERROR_CODE_MESAGE_TEMPLATE_DELETED": `did you mean "ERROR_CODE_MESSAGE_TEMPLATE_DELETED"`,
		"SOMETHING_NEW":                      "not an error code",
		"ERROR_CODE_lower":                   "not an error code",
	} {
		err := connectly.CheckOverrideKey(k)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckOverrideKey(%s) = %v, want an error saying %s", k, err, want)
		}
	}
}

// ParseOverride is the rule NewTable applies to each override.
func TestParseOverride(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		key, class string
		ok         bool
	}{
		{"HTTP_500", "Permanent", true},
		{"HTTP_500", "sometimes", false},
		{"131047", "stop-run", true},
		{"131047", "throttle", false},
		{"ERROR_TYPE_DEADLINE_EXCEEDED", "transient", false},
	} {
		_, err := connectly.ParseOverride(tc.key, tc.class)
		_, tableErr := connectly.NewTable(map[string]string{tc.key: tc.class})
		if (err == nil) != tc.ok || (tableErr == nil) != tc.ok {
			t.Errorf("%s: %s: ParseOverride %v, NewTable %v; want ok %v", tc.key, tc.class, err, tableErr, tc.ok)
		}
	}
}
