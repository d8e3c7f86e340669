package fakeconnectly

import (
	"math/rand/v2"
	"time"
)

// crockford is the Crockford base32 alphabet ULIDs are written in.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// idGen makes message ids shaped like Connectly's: 26-character ULIDs, a 48-bit millisecond
// timestamp followed by 80 random bits. Ids made within one millisecond (or while the clock
// stands still or steps back) increment the random part, so a Server never repeats an id.
// It is not safe for concurrent use; the Server calls it under its mutex.
type idGen struct {
	started bool
	ms      uint64
	hi      uint16 // top 16 bits of the random part
	lo      uint64 // low 64 bits of the random part
}

func (g *idGen) next(now time.Time) string {
	ms := uint64(0)
	if m := now.UnixMilli(); m > 0 {
		ms = uint64(m)
	}
	ms &= 1<<48 - 1
	if g.started && ms <= g.ms {
		g.lo++
		if g.lo == 0 {
			g.hi++
			if g.hi == 0 {
				g.ms++
			}
		}
	} else {
		g.started = true
		g.ms = ms
		g.hi = uint16(rand.Uint32())
		g.lo = rand.Uint64()
	}
	return encodeULID(g.ms<<16|uint64(g.hi), g.lo)
}

// encodeULID writes the 128-bit value hi:lo as 26 Crockford base32 characters, most
// significant first (the first character holds the top 3 bits, so it is 0..7).
func encodeULID(hi, lo uint64) string {
	var b [26]byte
	for i := 25; i >= 0; i-- {
		b[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(b[:])
}
