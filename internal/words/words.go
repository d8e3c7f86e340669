// Package words holds the small helpers Herald's user-facing texts share, so that "1
// recipient" and "2 recipients" read the same in every command, report and audit entry.
package words

import "strconv"

// Count says n things: Count(1, "recipient", "recipients") is "1 recipient", Count(0, ...)
// "0 recipients". one and many are the thing's singular and plural, given whole because
// English plurals are no rule ("entry", "entries").
func Count(n int, one, many string) string {
	return strconv.Itoa(n) + " " + Plural(n, one, many)
}

// Plural is the word Count puts after the number: one when n is 1, else many. It serves a
// text that names the things without counting them ("on_reply rules r1, r2").
func Plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
