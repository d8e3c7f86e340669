package campaigns

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/heraldmsg/herald/internal/suggest"
)

// unknownKeys reports every mapping key under n that the struct type t does not declare, at
// the key's own position, with the closest known key as a suggestion. It descends into struct
// fields; maps (parameters) are checked by validation.
func unknownKeys(file string, n *yaml.Node, t reflect.Type, prefix string) Errors {
	if n == nil || n.Kind != yaml.MappingNode || t.Kind() != reflect.Struct {
		return nil
	}
	fields := yamlFields(t)
	var errs Errors
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		ft, ok := fields[k.Value]
		if !ok {
			msg := fmt.Sprintf("unknown key %q", k.Value)
			if s := suggest.Closest(k.Value, sortedKeys(fields)); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			} else {
				msg += " (known keys: " + strings.Join(sortedKeys(fields), ", ") + ")"
			}
			errs = append(errs, FieldError{File: file, Line: k.Line, Column: k.Column, Field: prefix + k.Value, Msg: msg})
			continue
		}
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		// Types that decode themselves check their own keys.
		if reflect.PointerTo(ft).Implements(unmarshalerType) || reflect.PointerTo(ft).Implements(nodeDecoderType) {
			continue
		}
		if ft.Kind() == reflect.Struct {
			errs = append(errs, unknownKeys(file, v, ft, prefix+k.Value+".")...)
		}
		// A list of structs (a message's buttons, a list's rows): each item is checked.
		if ft.Kind() == reflect.Slice && v.Kind == yaml.SequenceNode {
			et := ft.Elem()
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct && !reflect.PointerTo(et).Implements(unmarshalerType) && !reflect.PointerTo(et).Implements(nodeDecoderType) {
				for j, item := range v.Content {
					errs = append(errs, unknownKeys(file, item, et, fmt.Sprintf("%s%s[%d].", prefix, k.Value, j))...)
				}
			}
		}
	}
	return errs
}

// yamlFields maps the YAML keys of struct type t to their types; the fields of an inline
// struct are t's own.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	for k, idx := range yamlFieldIndex(t) {
		fields[k] = t.FieldByIndex(idx).Type
	}
	return fields
}

var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

func sortedKeys(m map[string]reflect.Type) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
