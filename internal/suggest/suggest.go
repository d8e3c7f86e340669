// Package suggest finds the known name closest to a mistyped one, for the "did you mean"
// of an error about an unknown key or code: campaign files, the config file and its error
// codes share it.
package suggest

import "strings"

// Closest returns the name in known closest to s, ignoring case, when it is close enough to
// be a typo of it (at most a third of its letters apart, or one); else "". Of two names as
// close, the one first in known wins.
func Closest(s string, known []string) string {
	best, bestD := "", 1<<30
	for _, k := range known {
		if d := EditDistance(strings.ToLower(s), strings.ToLower(k)); d < bestD {
			best, bestD = k, d
		}
	}
	if best != "" && bestD <= max(1, len([]rune(best))/3) {
		return best
	}
	return ""
}

// EditDistance is the Levenshtein distance between a and b, in runes.
func EditDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
