package campaigns_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/heraldmsg/herald/campaigns"
	"github.com/heraldmsg/herald/internal/connectly"
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

// A product object without aliases is bounded too (it is copied into every send task): one
// over 16 KiB is a problem at validation.
func TestParseProductOverBound(t *testing.T) {
	t.Parallel()
	src := "id: big\naudience: {file: a.csv}\nmessage: {text: hi, multi_product: {pad: " + strings.Repeat("A", 20_000) + "}}\n"
	_, err := campaigns.Parse("c.yaml", []byte(src))
	if err == nil || !strings.Contains(err.Error(), "multi_product") || !strings.Contains(err.Error(), "at most 16384") {
		t.Fatalf("Parse: %v", err)
	}
}

// A message rendered for a recipient is validated, product objects' bound included: one built
// without the file's checks (a stored campaign) puts no oversized object into a send task.
func TestRenderProductOverBound(t *testing.T) {
	t.Parallel()
	c := connectly.SessionContent{Text: "hi", MultiProduct: connectly.RawObject(`{"pad":"` + strings.Repeat("A", 20_000) + `"}`)}
	r, err := campaigns.NewSessionRenderer(c)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := r.Render(map[string]string{}); err == nil || !errors.Is(err, campaigns.ErrRender) || !strings.Contains(err.Error(), "multi_product") {
		t.Fatalf("Render: %d bytes, %v", len(b), err)
	}
}
