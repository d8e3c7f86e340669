package demo

import (
	"encoding/json"
	"strings"
	"unicode"

	"github.com/heraldmsg/herald/internal/fakeconnectly"
)

// FakeStats are the fake Connectly's counts as `herald demo --json` prints them: the fake's
// own fields under snake_case keys (sessions_accepted), as every other key of the report.
// The fake's control API keeps its camelCase (sessionsAccepted), Connectly's style.
type FakeStats fakeconnectly.Stats

// MarshalJSON writes the fake's fields under snake_case keys.
func (s FakeStats) MarshalJSON() ([]byte, error) { return snakeKeys(fakeconnectly.Stats(s)) }

// UnmarshalJSON reads what MarshalJSON wrote.
func (s *FakeStats) UnmarshalJSON(b []byte) error {
	return fromSnakeKeys(b, (*fakeconnectly.Stats)(s))
}

// WebhookStats are the fake's webhook calls as `herald demo --json` prints them (see
// FakeStats).
type WebhookStats fakeconnectly.WebhookStats

// MarshalJSON writes the fake's fields under snake_case keys.
func (s WebhookStats) MarshalJSON() ([]byte, error) {
	return snakeKeys(fakeconnectly.WebhookStats(s))
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (s *WebhookStats) UnmarshalJSON(b []byte) error {
	return fromSnakeKeys(b, (*fakeconnectly.WebhookStats)(s))
}

// snakeKeys encodes v, a struct, with its field keys (the object's top level, not the keys of
// maps inside it) in snake_case.
func snakeKeys(v any) ([]byte, error) {
	return renameKeys(v, snake)
}

// fromSnakeKeys decodes what snakeKeys encoded into v.
func fromSnakeKeys(b []byte, v any) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	b, err := renameKeys(m, camel)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func renameKeys(v any, name func(string) string) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	out := make(map[string]json.RawMessage, len(m))
	for k, v := range m {
		out[name(k)] = v
	}
	return json.Marshal(out)
}

// snake turns sessionsAccepted into sessions_accepted.
func snake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// camel turns sessions_accepted into sessionsAccepted.
func camel(s string) string {
	parts := strings.Split(s, "_")
	for i := 1; i < len(parts); i++ {
		if p := parts[i]; p != "" {
			parts[i] = strings.ToUpper(p[:1]) + p[1:]
		}
	}
	return strings.Join(parts, "")
}
