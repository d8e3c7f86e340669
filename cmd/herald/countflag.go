package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/pflag"
)

// countValue is a flag holding a count of 1 or more (--limit, --page): 0 or a negative count
// is refused when the flag is parsed, as wrong usage (exit 2), before anything is read. Passed
// on as it was, 0 listed everything and -1 all but the oldest.
type countValue int

func (v *countValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("want a whole number, 1 or more")
	}
	if n < 1 {
		return fmt.Errorf("want 1 or more")
	}
	*v = countValue(n)
	return nil
}

func (v *countValue) String() string { return strconv.Itoa(int(*v)) }

func (v *countValue) Type() string { return "int" }

// countFlag defines a count flag name on fs, into p, value by default.
func countFlag(fs *pflag.FlagSet, p *int, name string, value int, usage string) {
	*p = value
	fs.Var((*countValue)(p), name, usage)
}
