package campaigns

import (
	"fmt"
	"sort"

	"go.yaml.in/yaml/v3"
)

// The columns a campaign's templates read. A template's {{ .name }} renders a column of the
// audience row, and a column the header does not have renders empty on every row: each
// recipient would then be skipped as invalid_params ("body_1: value is empty") only once the
// rows are read. Validation finds it in the header instead, at the template's place.

// audienceHeader opens the definition's audience and returns its header's columns, or nil
// for a JSON Lines audience, which has none. The error is OpenAudience's.
func audienceHeader(d *Definition) ([]string, error) {
	ar, err := OpenAudience(d)
	if err != nil {
		return nil, err
	}
	defer ar.Close()
	cs, ok := ar.src.(*csvSource)
	if !ok {
		return nil, nil
	}
	return cs.header, nil
}

// missingColumn says that a template reads a column the audience's header lacks, naming the
// columns it has (column names only, each as safeName shows it: never a row's values).
func missingColumn(name, audience string, header []string) string {
	return fmt.Sprintf("reads column %s, which the audience %s does not have (its columns: %s)", colName(name), audience, shownColumns(header))
}

// templateReads lists the columns the campaign's own templates read, each with its field and
// place: the parameters of the template (or of the fallback template), and the strings of a
// session message. A template that does not compile, or a parameter with an unknown name, is
// left to the checks that report it; a read the broken fields cover is left out.
func (d *Definition) templateReads(root *yaml.Node, broken brokenFields) []columnRead {
	var out []columnRead
	read := func(field string, at *yaml.Node, text string) {
		if broken.covers(field) {
			return
		}
		t, err := parseParam(field, text)
		if err != nil {
			return
		}
		names, _ := rowReads(t.Tree)
		for _, name := range names {
			out = append(out, columnRead{name: name, field: field, at: Position{at.Line, at.Column}})
		}
	}
	params := func(key string, p Parameters) {
		names := make([]string, 0, len(p.Values))
		for name := range p.Values {
			if paramOrder(name) >= 0 {
				names = append(names, name)
			}
		}
		sort.Strings(names)
		for _, name := range names {
			read(key+"."+name, locate(root, key+"."+name), p.Values[name])
		}
		for i, rp := range p.Raw {
			line, col := rawPosition(root, key, i)
			read(fmt.Sprintf("%s.raw[%d].value", key, i), &yaml.Node{Line: line, Column: col}, rp.Value)
		}
	}
	switch {
	case d.IsSession():
		_, _ = d.Message.MapStrings(func(f, s string) (string, error) {
			read("message."+f, locate(root, "message."+f), s)
			return s, nil
		})
		if d.FallbackTemplate != nil {
			params("fallback_template.parameters", d.FallbackTemplate.Parameters)
		}
	default:
		params("parameters", d.Parameters)
	}
	return out
}

// columnProblems returns a problem for each read of a column the header lacks.
func columnProblems(d *Definition, reads []columnRead, header []string) Errors {
	have := make(map[string]bool, len(header))
	for _, h := range header {
		have[h] = true
	}
	var errs Errors
	for _, rd := range reads {
		if !have[rd.name] {
			errs = append(errs, FieldError{File: d.Path, Line: rd.at.Line, Column: rd.at.Column, Field: rd.field,
				Msg: missingColumn(rd.name, d.Audience.File, header)})
		}
	}
	return errs
}
