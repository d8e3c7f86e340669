package fakeconnectly

import (
	"math/rand/v2"
	"time"

	"github.com/heraldmsg/herald/internal/ulid"
)

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
	return ulid.Format(g.ms<<16|uint64(g.hi), g.lo)
}
