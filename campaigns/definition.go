package campaigns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/nyaruka/phonenumbers"
	"go.yaml.in/yaml/v3"
)

// Definition is a campaign as written in YAML.
type Definition struct {
	// ID is a slug: lower-case letters, digits and '-', at most 64 characters.
	ID     string   `yaml:"id"`
	Name   string   `yaml:"name"`
	Sender string   `yaml:"sender"`
	Tags   []string `yaml:"tags"`

	Template Template `yaml:"template"`
	// Parameters maps a Connectly parameter name (header_image, body_1, button_1_url, ...)
	// to a Go text/template over the audience row's columns.
	Parameters map[string]string `yaml:"parameters"`
	Audience   Audience          `yaml:"audience"`
	// Delivery is "at-most-once" (default) or "at-least-once".
	Delivery string `yaml:"delivery"`

	// Path is the file the definition was read from ("" when parsed from bytes).
	Path string `yaml:"-"`
}

// Template names the approved WhatsApp template.
type Template struct {
	Name     string `yaml:"name"`
	Language string `yaml:"language"`
	// Category is marketing (default), utility or authentication; it chooses the queue.
	Category string `yaml:"category"`
}

// Audience says where the recipients come from.
type Audience struct {
	// File is a CSV file with a header row; a relative path is relative to the campaign file.
	File string `yaml:"file"`
	// Phone is the column holding phone numbers (default "phone").
	Phone string `yaml:"phone"`
	// DefaultRegion is the ISO country for numbers written without a country code (e.g. "US").
	DefaultRegion string `yaml:"default_region"`
}

// Categories lists the template categories.
var Categories = []string{"marketing", "utility", "authentication"}

// FieldError is one problem in a campaign file, with its position when known.
type FieldError struct {
	File   string
	Line   int
	Column int
	Field  string
	Msg    string
}

func (e FieldError) Error() string {
	pos := e.File
	if e.Line > 0 {
		pos += ":" + strconv.Itoa(e.Line) + ":" + strconv.Itoa(e.Column)
	}
	if e.Field != "" {
		return pos + ": " + e.Field + ": " + e.Msg
	}
	return pos + ": " + e.Msg
}

// Errors is every problem found in one file; Load returns it (wrapped) so callers see all of
// them at once.
type Errors []FieldError

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

var slugRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)

// ParamNames are the documented template parameter names, in request order.
var ParamNames = func() []string {
	n := []string{"header_text", "header_image", "header_video", "header_document"}
	for i := 1; i <= 15; i++ {
		n = append(n, "body_"+strconv.Itoa(i))
	}
	return append(n, "button_1_url", "button_2_url")
}()

func paramOrder(name string) int {
	for i, n := range ParamNames {
		if n == name {
			return i
		}
	}
	return -1
}

// Load reads and validates a campaign file.
func Load(path string) (*Definition, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("campaign: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes and validates a campaign from YAML. It returns an error wrapping Errors that
// lists every problem found, each as "file:line:col: field: message".
func Parse(path string, data []byte) (*Definition, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, Errors{yamlError(path, err)}
	}
	if len(root.Content) == 0 {
		return nil, Errors{{File: path, Line: 1, Column: 1, Msg: "file is empty"}}
	}
	// Unknown keys are found on the node tree, where each has its own line and column and the
	// known keys give a suggestion; the decoder then ignores them and validation still runs.
	errs := unknownKeys(path, root.Content[0], reflect.TypeOf(Definition{}), "")
	var d Definition
	if err := root.Content[0].Decode(&d); err != nil {
		// A wrong type or a duplicate key: part of the file was not decoded and would read as
		// missing, so report the decoding problems (and unknown keys) only.
		var te *yaml.TypeError
		if !errors.As(err, &te) || len(te.Errors) == 0 {
			return nil, append(errs, yamlError(path, err))
		}
		for _, msg := range te.Errors {
			errs = append(errs, yamlMsgError(path, msg))
		}
		sortErrors(errs)
		return nil, errs
	}
	d.Path = path
	errs = append(errs, d.validate(path, root.Content[0])...)
	if len(errs) > 0 {
		sortErrors(errs)
		return nil, errs
	}
	return &d, nil
}

// sortErrors orders errors by position.
func sortErrors(errs Errors) {
	sort.SliceStable(errs, func(i, j int) bool {
		if errs[i].Line != errs[j].Line {
			return errs[i].Line < errs[j].Line
		}
		return errs[i].Column < errs[j].Column
	})
}

var (
	yamlLineRE = regexp.MustCompile(`line (\d+): (.*)`)
)

// yamlError turns a YAML decoding error into a FieldError with its line.
func yamlError(path string, err error) FieldError {
	var te *yaml.TypeError
	msg := err.Error()
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	return yamlMsgError(path, msg)
}

// yamlMsgError turns one YAML error message ("line N: ...") into a FieldError with its line.
func yamlMsgError(path, msg string) FieldError {
	msg = strings.TrimPrefix(msg, "yaml: ")
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return FieldError{File: path, Line: line, Column: 1, Msg: m[2]}
	}
	return FieldError{File: path, Msg: msg}
}

// find returns the node at a dotted path under a mapping node, for error positions.
func find(n *yaml.Node, path ...string) *yaml.Node {
	for _, p := range path {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == p {
				next = n.Content[i+1]
			}
		}
		n = next
	}
	return n
}

func (d *Definition) validate(path string, root *yaml.Node) Errors {
	var errs Errors
	add := func(field, msg string) {
		e := FieldError{File: path, Field: field, Msg: msg}
		if n := find(root, strings.Split(field, ".")...); n != nil {
			e.Line, e.Column = n.Line, n.Column
		} else if n := find(root, strings.Split(field, ".")[0]); n != nil {
			e.Line, e.Column = n.Line, n.Column
		} else {
			e.Line, e.Column = root.Line, root.Column
		}
		errs = append(errs, e)
	}
	if d.ID == "" {
		add("id", "is required")
	} else if !slugRE.MatchString(d.ID) {
		add("id", fmt.Sprintf("%q is not a slug (lower-case letters, digits and '-', at most 64)", d.ID))
	}
	if d.Template.Name == "" {
		add("template.name", "is required")
	}
	if d.Template.Language == "" {
		add("template.language", "is required (e.g. en, en_US, pt_BR)")
	}
	if d.Template.Category == "" {
		d.Template.Category = "marketing"
	} else if !contains(Categories, d.Template.Category) {
		add("template.category", fmt.Sprintf("%q: want one of %s", d.Template.Category, strings.Join(Categories, ", ")))
	}
	for name, tpl := range d.Parameters {
		if paramOrder(name) < 0 {
			add("parameters."+name, "unknown parameter name; want header_text|header_image|header_video|header_document, body_1..body_15, button_1_url or button_2_url")
			continue
		}
		if _, err := parseParam(name, tpl); err != nil {
			add("parameters."+name, err.Error())
		}
	}
	if d.Audience.File == "" {
		add("audience.file", "is required")
	}
	if d.Audience.Phone == "" {
		d.Audience.Phone = "phone"
	}
	// The region must also be one the phone library knows: "UK" looks right but is not a code
	// (the United Kingdom is GB), and every national number would then be skipped as invalid.
	if r := d.Audience.DefaultRegion; r != "" && (!regexp.MustCompile(`^[A-Z]{2}$`).MatchString(r) || !phonenumbers.GetSupportedRegions()[r]) {
		add("audience.default_region", fmt.Sprintf("%q is not an ISO 3166 alpha-2 country code (e.g. US, BR)", d.Audience.DefaultRegion))
	}
	if d.Sender != "" && !regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`).MatchString(d.Sender) {
		add("sender", fmt.Sprintf("%q is not an E.164 number (+ and 7 to 15 digits)", d.Sender))
	}
	switch d.Delivery {
	case "":
		d.Delivery = "at-most-once"
	case "at-most-once", "at-least-once":
	default:
		add("delivery", fmt.Sprintf("%q: want at-most-once or at-least-once", d.Delivery))
	}
	return errs
}

// AudiencePath resolves the audience file relative to the campaign file.
func (d *Definition) AudiencePath() string {
	if filepath.IsAbs(d.Audience.File) || d.Path == "" {
		return d.Audience.File
	}
	return filepath.Join(filepath.Dir(d.Path), d.Audience.File)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
