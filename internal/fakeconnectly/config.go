package fakeconnectly

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
)

// ParseConfig reads a Config written as JSON, the form of `herald fake-connectly
// --fake-config FILE`: the field names in camelCase ("businessId", "rateLimit", "rules",
// "templates", "webhooks": {"secret", "fates", "replies", "delay": "200ms", ...},
// "strict": {"httpsMedia": true}, ...), rules in their JSON form (Rule.UnmarshalJSON),
// durations as Go duration strings or nanoseconds. A field it does not know is an error, so
// a misspelt knob is not silently dropped; a bad rule is named by its place in the list and
// its line and column in the file (ParseRules). Clock and Webhooks.HTTPClient cannot be given.
// It does not validate the values: New does.
func ParseConfig(r io.Reader) (Config, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return Config{}, fmt.Errorf("fakeconnectly: config: %w", err)
	}
	var c Config
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		// A bad rule is named by its place in "rules" and in the file, as in a --faults file.
		if rerr := configRulesError(data); rerr != nil {
			err = rerr
		}
		return Config{}, fmt.Errorf("fakeconnectly: config: %w", err)
	}
	if dec.More() {
		return Config{}, errors.New("fakeconnectly: config: more than one JSON value")
	}
	return c, nil
}

// durationJSON is a time.Duration written as a Go duration string ("200ms"); a JSON number
// is read as nanoseconds.
type durationJSON time.Duration

func (d durationJSON) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

func (d *durationJSON) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		*d = durationJSON(v)
		return nil
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("duration %s: want a string such as \"200ms\" or nanoseconds", b)
	}
	*d = durationJSON(n)
	return nil
}

// webhookConfigJSON is WebhookConfig with Delay as a duration string.
type webhookConfigJSON struct {
	*webhookConfigPlain
	Delay durationJSON `json:"delay,omitempty"`
}

// webhookConfigPlain is WebhookConfig without its JSON methods.
type webhookConfigPlain WebhookConfig

// MarshalJSON writes the configuration with camelCase names and Delay as a duration string.
func (c WebhookConfig) MarshalJSON() ([]byte, error) {
	plain := webhookConfigPlain(c)
	return json.Marshal(webhookConfigJSON{webhookConfigPlain: &plain, Delay: durationJSON(c.Delay)})
}

// UnmarshalJSON reads the form MarshalJSON writes (Delay also as nanoseconds); unknown field
// names are an error.
func (c *WebhookConfig) UnmarshalJSON(b []byte) error {
	var plain webhookConfigPlain
	w := webhookConfigJSON{webhookConfigPlain: &plain}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return fmt.Errorf("webhooks: %w", err)
	}
	plain.Delay = time.Duration(w.Delay)
	*c = WebhookConfig(plain)
	return nil
}
