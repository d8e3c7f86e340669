package campaigns_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/campaigns"
)

// productBomb is a product object whose one long text is repeated by aliases (the shape of
// an alias bomb: size bytes written once, n times size bytes expanded).
func productBomb(size, n int) string {
	return "{text: hi, multi_product: {a: &b " + strings.Repeat("A", size) + ", x: [" +
		strings.TrimSuffix(strings.Repeat("*b, ", n), ", ") + "]}}"
}

// A campaign message whose product object is an alias bomb is a problem at its place, found
// with little memory: the object is never expanded into its JSON.
func TestParseProductAliasBomb(t *testing.T) {
	src := "id: bomb\naudience: {file: a.csv}\nmessage: " + productBomb(10_000, 2_000) + "\n"
	var err error
	alloc := allocated(1, func() { _, err = campaigns.Parse("c.yaml", []byte(src)) })
	var errs campaigns.Errors
	if !errors.As(err, &errs) || !strings.Contains(err.Error(), "message.multi_product") || !strings.Contains(err.Error(), "aliases") {
		t.Fatalf("Parse: %v", err)
	}
	if alloc > 8<<20 {
		t.Errorf("Parse allocated %d bytes for a %d-byte file", alloc, len(src))
	}
}

// An on_reply message is decoded once, when the file is read: Content, called for every
// reply, returns it without decoding again. One whose product object is an alias bomb is an
// error, found with little memory, when the file is read and at every reply.
func TestReplyMessageDecodedOnce(t *testing.T) {
	d, err := campaigns.Parse("c.yaml", []byte(onReplyHead+`on_reply:
  - button: "Yes"
    message: {text: "Here it is", single_product: {catalogId: c1, productId: p1}}
`))
	if err != nil {
		t.Fatal(err)
	}
	rule := &d.OnReply.Rules[0]
	if c, err := rule.Message.Content(); err != nil || c.Text != "Here it is" || len(c.SingleProduct) == 0 {
		t.Fatalf("Content: %+v %v", c, err)
	}
	if n := testing.AllocsPerRun(10, func() { _, _ = rule.Message.Content() }); n != 0 {
		t.Errorf("Content allocates %v times per reply: it decodes the message again", n)
	}

	d, err = campaigns.Parse("c.yaml", []byte(onReplyHead+"on_reply:\n  - button: \"Yes\"\n    message: "+productBomb(10_000, 2_000)+"\n"))
	if err != nil {
		// Refused when the file is read: as good.
		if !strings.Contains(err.Error(), "aliases") {
			t.Fatalf("Parse: %v", err)
		}
		return
	}
	rule = &d.OnReply.Rules[0]
	alloc := allocated(1, func() { _, err = rule.Message.Content() })
	if err == nil || !strings.Contains(err.Error(), "aliases expanded") {
		t.Fatalf("Content of an alias bomb: %v", err)
	}
	if alloc > 1<<20 {
		t.Errorf("Content allocated %d bytes per reply", alloc)
	}
}
