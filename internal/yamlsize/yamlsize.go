// Package yamlsize measures a YAML tree as it would decode, its aliases expanded, without
// decoding it: the bound that keeps an alias bomb in an untrusted file (a campaign, a
// message file) from costing more than a limit, however many times an alias repeats its
// anchor.
package yamlsize

import "go.yaml.in/yaml/v3"

// maxAliasDepth bounds aliases followed inside aliases; deeper is an alias inside its own
// anchor, which the YAML decoder refuses.
const maxAliasDepth = 64

// Expanded counts the nodes under n and their scalars' bytes, aliases expanded, and stops as
// soon as either reaches its limit: it takes at most about nodeLimit steps. An alias inside
// its own anchor counts as nodeLimit nodes.
func Expanded(n *yaml.Node, nodeLimit, byteLimit int) (nodes, bytes int) {
	var walk func(n *yaml.Node, depth int)
	walk = func(n *yaml.Node, depth int) {
		if n == nil || nodes >= nodeLimit || bytes >= byteLimit {
			return
		}
		nodes++
		bytes += len(n.Value)
		if n.Kind == yaml.AliasNode {
			if depth > maxAliasDepth {
				nodes = nodeLimit
				return
			}
			walk(n.Alias, depth+1)
			return
		}
		for _, c := range n.Content {
			walk(c, depth)
		}
	}
	walk(n, 0)
	return nodes, bytes
}
