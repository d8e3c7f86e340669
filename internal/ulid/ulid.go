// Package ulid reads and writes ULIDs, the 128-bit ids Connectly gives messages, written as 26
// Crockford base-32 characters (the first holds the top 3 bits, so it is 0 to 7).
package ulid

import "time"

// alphabet is the Crockford base-32 alphabet ULIDs are written in.
const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// value maps a character to its base-32 value, -1 when it is not one of the 32; lenient
// also takes lower-case letters.
var value, lenient = func() (t, l [256]int8) {
	for i := range t {
		t[i], l[i] = -1, -1
	}
	for i := 0; i < len(alphabet); i++ {
		c := alphabet[i]
		t[c], l[c] = int8(i), int8(i)
		if c >= 'A' {
			l[c+'a'-'A'] = int8(i)
		}
	}
	return t, l
}()

// Format writes the 128-bit value hi:lo as a ULID, most significant character first.
func Format(hi, lo uint64) string {
	var b [26]byte
	for i := 25; i >= 0; i-- {
		b[i] = alphabet[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(b[:])
}

// Parse reads a ULID in its canonical form (26 characters, upper case, first 0 to 7), the
// form Format writes; ok is false for anything else, so Format(Parse(s)) is s when ok.
func Parse(s string) (hi, lo uint64, ok bool) {
	if len(s) != 26 || s[0] > '7' {
		return 0, 0, false
	}
	for i := 0; i < 26; i++ {
		v := value[s[i]]
		if v < 0 {
			return 0, 0, false
		}
		hi = hi<<5 | lo>>59
		lo = lo<<5 | uint64(v)
	}
	return hi, lo, true
}

// Time returns the creation time a ULID holds (its first ten characters are a 48-bit Unix
// millisecond timestamp), in either case; ok is false for anything that is not a ULID.
func Time(id string) (t time.Time, ok bool) {
	if len(id) != 26 {
		return time.Time{}, false
	}
	var ms uint64
	for i := 0; i < 26; i++ {
		v := lenient[id[i]]
		if v < 0 {
			return time.Time{}, false
		}
		if i < 10 {
			ms = ms<<5 | uint64(v)
		}
	}
	if ms >= 1<<48 {
		return time.Time{}, false
	}
	return time.UnixMilli(int64(ms)), true
}
