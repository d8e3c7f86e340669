package campaigns

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/heraldmsg/herald/internal/yamlerr"
	"github.com/heraldmsg/herald/internal/yamlsize"
	"go.yaml.in/yaml/v3"
)

// Decoding a campaign file. The YAML tree is decoded into a Definition one field at a time,
// following the Go types, rather than by one call of the YAML decoder, which stops at a key
// given twice or at a type its own decoders refuse, and reports a wrong type by line only. So
// a value of the wrong type (rate: fast) is one problem at its own line and column, named by
// its field path (rate: want a number, got "fast"); its field is left empty and marked
// broken, and every other field is still decoded and validated. The checks that read a
// broken field skip it (brokenFields), so each problem is reported once, at its cause.

// nodeDecoder is implemented by the types that read a YAML shape of their own (parameters,
// a word or a list of words, on_reply): they decode through d, so their problems have
// places and field paths like every other field's.
type nodeDecoder interface {
	decodeNode(d *decoder, n *yaml.Node, field string)
}

var nodeDecoderType = reflect.TypeOf((*nodeDecoder)(nil)).Elem()

// maxDecodeNodes bounds the YAML nodes decoded from one campaign file, aliases expanded: a
// file of MaxCampaignFileBytes holds fewer nodes than this without aliases, and an alias
// bomb ends in one problem instead of in memory use.
const maxDecodeNodes = 1 << 20

// maxDecodeBytes bounds the text of the values decoded whole (a map, a message object) from
// one campaign file, aliases expanded: their scalars' bytes. Without aliases a file holds at
// most MaxCampaignFileBytes; with them, a long text repeated by thousands of aliases would
// otherwise be copied into gigabytes (a product object is converted to JSON) while holding
// few nodes.
const maxDecodeBytes = 4 * MaxCampaignFileBytes

// decoder decodes a campaign file's YAML tree and keeps its problems.
type decoder struct {
	file string
	errs Errors
	// broken are the field paths that could not be decoded.
	broken brokenFields
	// budget is how many more nodes may be decoded (maxDecodeNodes); over is set once it ran
	// out and that was reported.
	budget int
	over   bool
	// bytes is how many more scalar bytes values decoded whole may hold (maxDecodeBytes).
	bytes int
	// via is the alias being decoded through: a problem below it is reported at the alias,
	// where the field's value is written, once per alias (failed).
	via    *yaml.Node
	failed map[*yaml.Node]bool
}

func newDecoder(file string) *decoder {
	return &decoder{file: file, broken: brokenFields{}, budget: maxDecodeNodes, bytes: maxDecodeBytes, failed: map[*yaml.Node]bool{}}
}

// problem records a problem at node n (or at the alias decoded through).
func (d *decoder) problem(n *yaml.Node, field, msg string) {
	if d.via != nil {
		if d.failed[d.via] {
			return
		}
		d.failed[d.via] = true
		n = d.via
	}
	d.errs = append(d.errs, FieldError{File: d.file, Line: n.Line, Column: n.Column, Field: field, Msg: msg})
}

// fail records that field could not be decoded from n, and why.
func (d *decoder) fail(n *yaml.Node, field, msg string) {
	d.broken[field] = true
	d.problem(n, field, msg)
}

// spend takes n nodes from the budget, reporting at node at when it runs out.
func (d *decoder) spend(at *yaml.Node, field string, n int) bool {
	d.budget -= n
	if d.budget >= 0 {
		return true
	}
	d.broken[field] = true
	if !d.over {
		d.over = true
		d.problem(at, field, fmt.Sprintf("the file's aliases expand to more than %d values", maxDecodeNodes))
	}
	return false
}

// decode decodes n into v, the value at field path field ("" for the whole campaign).
func (d *decoder) decode(n *yaml.Node, v reflect.Value, field string) {
	if !d.spend(n, field, 1) {
		return
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		if d.via == nil {
			d.via = n
			defer func() { d.via = nil }()
		}
		n = n.Alias
	}
	if isNull(n) {
		v.Set(reflect.Zero(v.Type()))
		return
	}
	if v.CanAddr() {
		if nd, ok := v.Addr().Interface().(nodeDecoder); ok {
			nd.decodeNode(d, n, field)
			return
		}
		if reflect.PointerTo(v.Type()).Implements(unmarshalerType) {
			d.decodeLeaf(n, v, field)
			return
		}
	}
	switch v.Kind() {
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		d.decode(n, p.Elem(), field)
		v.Set(p)
	case reflect.Struct:
		d.decodeStruct(n, v, field)
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			d.decodeLeaf(n, v, field)
			return
		}
		if n.Kind != yaml.SequenceNode {
			d.fail(n, field, "want a list, got "+describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		scalars := isScalarKind(v.Type().Elem().Kind())
		for i, c := range n.Content {
			item := field + "[" + strconv.Itoa(i) + "]"
			d.decode(c, s.Index(i), item)
			// A list of values is one field: an item missing from it would shift the
			// others, so its checks are skipped whole.
			if scalars && d.broken[item] {
				d.broken[field] = true
			}
		}
		v.Set(s)
	default:
		d.decodeLeaf(n, v, field)
	}
}

// decodeStruct decodes a mapping into a struct, key by key. Keys the struct does not declare
// are left to unknownKeys, which reports them with a suggestion.
func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, field string) {
	fields := yamlFieldIndex(v.Type())
	if n.Kind != yaml.MappingNode {
		d.fail(n, field, wantMapping(fields)+", got "+describe(n))
		return
	}
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			continue // not a name: unknownKeys reports it
		}
		idx, ok := fields[k.Value]
		if !ok {
			continue
		}
		sub := joinField(field, k.Value)
		if first, dup := seen[k.Value]; dup {
			d.problem(k, sub, fmt.Sprintf("given twice (first at line %d)", first.Line))
			continue
		}
		seen[k.Value] = k
		d.decode(val, v.FieldByIndex(idx), sub)
	}
}

// decodeLeaf decodes a value the YAML decoder reads whole: a text, a number, a boolean, a
// map, or a type with its own UnmarshalYAML.
func (d *decoder) decodeLeaf(n *yaml.Node, v reflect.Value, field string) {
	if (isScalarKind(v.Kind()) && n.Kind != yaml.ScalarNode) || (v.Kind() == reflect.Map && n.Kind != yaml.MappingNode) {
		d.fail(n, field, want(v.Type())+", got "+describe(n))
		return
	}
	if n.Kind != yaml.ScalarNode {
		nodes, size := yamlsize.Expanded(n, d.budget+1, d.bytes+1)
		if !d.spend(n, field, nodes) {
			return
		}
		if d.bytes -= size; d.bytes < 0 {
			d.fail(n, field, fmt.Sprintf("the file's aliases expand its values to more than %d bytes", maxDecodeBytes))
			d.bytes = 0
			return
		}
	}
	if err := n.Decode(v.Addr().Interface()); err != nil {
		msg := want(v.Type()) + ", got " + describe(n)
		if !isScalarKind(v.Kind()) {
			msg = yamlMessage(err)
		}
		d.fail(n, field, msg)
	}
}

// yamlMessage is the text of a YAML decoding error without its "yaml: line N:" prefix (the
// problem has its place).
func yamlMessage(err error) string {
	_, msg := yamlerr.Line(err)
	return msg
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func isScalarKind(k reflect.Kind) bool {
	switch k {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

// want says what a field of type t holds, for a problem.
func want(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "want a text value"
	case reflect.Bool:
		return "want true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "want a whole number"
	case reflect.Float32, reflect.Float64:
		return "want a number"
	case reflect.Slice:
		return "want a list"
	case reflect.Pointer:
		return want(t.Elem())
	case reflect.Struct:
		return wantMapping(yamlFieldIndex(t))
	}
	return "want a mapping"
}

// wantMapping says that a field holds a mapping with the given keys, naming them when few.
func wantMapping(fields map[string][]int) string {
	if len(fields) == 0 || len(fields) > 8 {
		return "want a mapping of keys"
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return "want a mapping (keys: " + strings.Join(keys, ", ") + ")"
}

// maxShownValue bounds a value of the campaign file quoted in a problem, in characters.
const maxShownValue = 40

// kindOf says what kind of thing a node holds (a text, a number, a mapping...), never its
// value: for a file that is not a campaign at all, which may be a secret reached by mistake
// (a link to a key file), nothing of it is quoted back.
func kindOf(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!int", "!!float":
			return "a number"
		case "!!bool":
			return "a boolean"
		case "!!null":
			return "nothing"
		}
		return "a text"
	}
	return "nothing"
}

// describe says what a node holds, for a problem about a value inside a campaign mapping: a
// scalar as written (quoted when text, shortened when long), else its kind. A document that
// is not a mapping is described by kindOf.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.AliasNode:
		return "an alias (*" + n.Value + ")"
	case yaml.ScalarNode:
		v := n.Value
		if utf8.RuneCountInString(v) > maxShownValue {
			v = string([]rune(v)[:maxShownValue]) + "..."
		}
		switch n.ShortTag() {
		case "!!int", "!!float", "!!bool":
			return v
		case "!!null":
			return "nothing"
		}
		return strconv.Quote(v)
	}
	return kindOf(n)
}

func joinField(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// yamlFieldIndex maps the YAML keys of struct type t to their fields' indexes; the fields of
// an inline struct are t's own. Only tagged fields have keys.
func yamlFieldIndex(t reflect.Type) map[string][]int {
	fields := map[string][]int{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")
		if len(tag) > 1 && tag[1] == "inline" && f.Type.Kind() == reflect.Struct {
			for k, idx := range yamlFieldIndex(f.Type) {
				fields[k] = append([]int{i}, idx...)
			}
			continue
		}
		if name := tag[0]; name != "" && name != "-" && f.IsExported() {
			fields[name] = []int{i}
		}
	}
	return fields
}

// brokenFields are the field paths of a campaign file that could not be decoded ("rate",
// "audience.file", "on_reply.rules[1].delay").
type brokenFields map[string]bool

// covers reports whether a check of field reads a broken field: field is broken, lies inside
// a broken field, or holds one (a rule whose button did not decode has no match to check).
func (b brokenFields) covers(field string) bool {
	return b.cover().covers(field)
}

// cover answers covers for many fields at the cost of one: around holds every field that
// holds a broken one, collected once.
type cover struct {
	broken brokenFields
	around map[string]bool
}

// cover returns b's cover, in time linear in the length of b's fields.
func (b brokenFields) cover() cover {
	c := cover{broken: b}
	if len(b) == 0 {
		return c
	}
	c.around = map[string]bool{}
	for f := range b {
		for i := len(f) - 1; i >= 0; i-- {
			if f[i] == '.' || f[i] == '[' {
				c.around[f[:i]] = true
			}
		}
	}
	return c
}

// covers is brokenFields.covers: field, or a field it lies inside (each prefix of it that
// within takes: up to a '.' or a '['), is broken; or field holds a broken field.
func (c cover) covers(field string) bool {
	if field == "" || len(c.broken) == 0 {
		return false
	}
	if c.broken[field] || c.around[field] {
		return true
	}
	for i := len(field) - 1; i >= 0; i-- {
		if (field[i] == '.' || field[i] == '[') && c.broken[field[:i]] {
			return true
		}
	}
	return false
}

// usable reports whether none of the fields is broken, inside or around.
func (b brokenFields) usable(fields ...string) bool {
	for _, f := range fields {
		if b.covers(f) {
			return false
		}
	}
	return true
}

// within reports whether field path a lies inside field path b ("on_reply.rules[1].delay"
// inside "on_reply.rules[1]" and "on_reply").
func within(a, b string) bool {
	return len(a) > len(b) && strings.HasPrefix(a, b) && (a[len(b)] == '.' || a[len(b)] == '[')
}

// without returns the problems whose field is not covered by a broken field: a check of a
// field left empty by a decoding problem would report what is not so ("is required").
func (b brokenFields) without(errs Errors) Errors {
	if len(b) == 0 {
		return errs
	}
	c := b.cover()
	out := errs[:0]
	for _, e := range errs {
		if !c.covers(e.Field) {
			out = append(out, e)
		}
	}
	return out
}
