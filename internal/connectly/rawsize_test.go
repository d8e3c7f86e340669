package connectly_test

import (
	"runtime"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/heraldmsg/herald/internal/connectly"
)

// aliasBomb is a message object in YAML whose one long text is repeated by aliases: a few KB
// written, n times size bytes expanded.
func aliasBomb(size, n int) string {
	return "{text: hi, multi_product: {a: &b " + strings.Repeat("A", size) + ", x: [" +
		strings.TrimSuffix(strings.Repeat("*b, ", n), ", ") + "]}}"
}

// A product or raw object whose aliases expand it past MaxRawYAML is refused before it is
// decoded, with little memory: it is never expanded into its JSON.
func TestRawObjectAliasBombRefused(t *testing.T) {
	src := aliasBomb(10_000, 2_000) // 20 MB expanded, 20 KB written
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var c connectly.SessionContent
	err := yaml.Unmarshal([]byte(src), &c)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "aliases expanded") {
		t.Fatalf("alias bomb decoded: %d bytes, err = %v", len(c.MultiProduct), err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Errorf("refusing the alias bomb allocated %d bytes", alloc)
	}
	// The same object, expanded, within the bound: decoded.
	if err := yaml.Unmarshal([]byte(aliasBomb(100, 10)), &c); err != nil || len(c.MultiProduct) < 1000 {
		t.Fatalf("small object with aliases: %d bytes, err = %v", len(c.MultiProduct), err)
	}
}

// No object Validate accepts is refused by the YAML bound: one of MaxRawMessage bytes decodes.
func TestRawObjectAtMaxDecodes(t *testing.T) {
	t.Parallel()
	src := "{raw: {text: " + strings.Repeat("a", connectly.MaxRawMessage-20) + "}}"
	var c connectly.SessionContent
	if err := yaml.Unmarshal([]byte(src), &c); err != nil {
		t.Fatal(err)
	}
	if len(c.Raw) < connectly.MaxRawMessage-20 {
		t.Fatalf("raw is %d bytes", len(c.Raw))
	}
}

// A product object is copied into every recipient's message: it has the raw object's bound,
// MaxRawMessage compacted, at validation and on the message rendered (which is validated). Spaces around its
// JSON do not count.
func TestProductObjectBounded(t *testing.T) {
	t.Parallel()
	obj := func(n int) connectly.RawObject {
		return connectly.RawObject(`{"catalogId": "c", "pad": "` + strings.Repeat("A", n) + `"}`)
	}
	over, at := obj(connectly.MaxRawMessage), obj(connectly.MaxRawMessage-40)
	for _, c := range []struct {
		field string
		set   func(c *connectly.SessionContent, o connectly.RawObject)
	}{
		{"single_product", func(c *connectly.SessionContent, o connectly.RawObject) { c.SingleProduct = o }},
		{"multi_product", func(c *connectly.SessionContent, o connectly.RawObject) { c.Text = "Pick one"; c.MultiProduct = o }},
	} {
		var big, ok connectly.SessionContent
		c.set(&big, over)
		c.set(&ok, at)
		if err := big.Validate(); err == nil || !strings.Contains(err.Error(), c.field) || !strings.Contains(err.Error(), "at most 16384") {
			t.Errorf("%s over the bound: Validate = %v", c.field, err)
		}
		if out, err := big.MapStrings(func(_, s string) (string, error) { return s, nil }); err != nil || out.Validate() == nil {
			t.Errorf("%s over the bound: rendered and validated: %v", c.field, err)
		}
		if err := ok.Validate(); err != nil {
			t.Errorf("%s within the bound: %v", c.field, err)
		}
		if out, err := ok.MapStrings(func(_, s string) (string, error) { return s, nil }); err != nil || out.Validate() != nil {
			t.Errorf("%s within the bound: MapStrings = %v", c.field, err)
		}
	}
}
