// Package audiencegen writes made-up audiences like real exports: the demo's (`herald demo`)
// and those of tests that need one like it. It imports no top-level package: the caller
// says which phone numbers are valid.
package audiencegen

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
)

// Header is the audience's CSV header.
const Header = "first_name,phone,coupon"

// names are the first names rows take in turn.
var names = []string{"ana", "bruno", "chen", "dara", "emeka", "farah", "goran", "hana", "ines", "jamal"}

// Write writes an audience of n rows to w as CSV (Header, then one row per recipient, with
// the coupon SPRING0001, SPRING0002, ...). About 1% of rows have an unusable phone number
// and 0.5% repeat an earlier recipient, as real exports do; every other row has a distinct
// US number that valid accepts. The same n always gives the same audience.
func Write(w io.Writer, n int, valid func(string) bool) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, Header)
	gen := NewPhones(valid)
	var phones []string
	for i := 1; i <= n; i++ {
		phone := gen.Next()
		switch {
		case i%100 == 37:
			phone = "+1 555 01" // too short: skipped as invalid_phone
		case i%200 == 99 && len(phones) > 0:
			phone = phones[len(phones)/2] // a repeat: skipped as duplicate
		default:
			phones = append(phones, phone)
		}
		fmt.Fprintf(bw, "%s,%s,SPRING%04d\n", names[i%len(names)], phone, i)
	}
	return bw.Flush()
}

// WriteFile writes an audience of n rows (Write) to the file at path.
func WriteFile(path string, n int, valid func(string) bool) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := Write(f, n, valid); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Phones yields distinct US numbers that its valid function accepts, in a fixed order: the
// numbers of Write's audiences.
type Phones struct {
	i     int
	valid func(string) bool
}

// NewPhones returns the numbers valid accepts, from the first.
func NewPhones(valid func(string) bool) *Phones { return &Phones{valid: valid} }

var areaCodes = []int{201, 212, 213, 305, 312, 404, 415, 503, 512, 617, 702, 718, 801, 919}

// Next returns the next number.
func (g *Phones) Next() string {
	for {
		g.i++
		area := areaCodes[g.i%len(areaCodes)]
		rest := g.i / len(areaCodes)
		exchange := 200 + (rest/10000)%700
		num := "+1" + strconv.Itoa(area) + strconv.Itoa(exchange) + fmt.Sprintf("%04d", rest%10000)
		if g.valid(num) {
			return num
		}
	}
}
