package campaigns

import (
	"regexp"
	"regexp/syntax"
	"slices"
	"sync"

	"github.com/nyaruka/phonenumbers"
)

// This file answers phonenumbers.IsValidNumber for a number given as country code and
// national significant number, from the library's own metadata, with each pattern compiled
// once. The library builds the pattern's text, looks it up in a locked cache and runs it
// twice for each of up to eleven number types on every call; on a large audience that was
// most of the time spent reading it. The decision is the library's, step for step:
//
//   - the region: the calling code's only region (or its non-geographic entity); with
//     several, the first whose leading digits match, or, for a region without leading
//     digits, the first for which the number has a type;
//   - valid when the number matches the region's general description and any one of its
//     type descriptions (premium rate, toll free, shared cost, VoIP, personal, pager, UAN,
//     voicemail, fixed line, mobile; mobile only when its pattern is not the fixed line's).
//     A description matches when the number's length is one of its possible lengths (or it
//     lists none) and its pattern matches the whole number.
//
// Each pattern is also compiled to a deterministic automaton over the ten digits (digitDFA),
// which answers for a string of digits in one table step a digit, where the regular
// expression engine took most of an audience's reading time again.
//
// TestPhoneValidatorMatchesLibrary and FuzzPhoneValidator hold it to the library, and
// TestDigitDFAMatchesRegexp each automaton to its pattern.

// descMatcher is one number description: possible lengths and the anchored pattern.
type descMatcher struct {
	lengths []int32
	re      *regexp.Regexp // nil: the description is absent and matches nothing
	dfa     *digitDFA      // re on strings of digits; nil: re answers everything
}

func newDescMatcher(d *phonenumbers.PhoneNumberDesc) descMatcher {
	if d == nil {
		return descMatcher{}
	}
	pattern := "^(?:" + d.GetNationalNumberPattern() + ")$"
	return descMatcher{lengths: d.GetPossibleLength(), re: regexp.MustCompile(pattern), dfa: compileDigitDFA(pattern)}
}

func (d descMatcher) match(nsn string) bool {
	if d.re == nil {
		return false
	}
	if len(d.lengths) > 0 && !slices.Contains(d.lengths, int32(len(nsn))) {
		return false
	}
	if d.dfa != nil {
		if m, ok := d.dfa.match(nsn); ok {
			return m
		}
	}
	return d.re.MatchString(nsn)
}

// digitDFA is an anchored regular expression as a deterministic automaton over the digits
// 0-9: whether a string of digits matches it whole is a walk of the string through states.
type digitDFA struct {
	states []dfaState // states[0] is the start
}

type dfaState struct {
	next   [10]int32 // the state after each digit; -1: no match whatever follows
	accept bool      // the string read so far matches
}

// maxDFAStates bounds an automaton's size; a pattern that needs more keeps its regexp alone.
const maxDFAStates = 4096

// match reports whether s matches; ok is false when s holds other than digits (the caller
// asks the regexp).
func (d *digitDFA) match(s string) (matched, ok bool) {
	st := int32(0)
	for i := 0; i < len(s); i++ {
		c := s[i] - '0'
		if c > 9 {
			return false, false
		}
		if st >= 0 {
			st = d.states[st].next[c]
		}
	}
	return st >= 0 && d.states[st].accept, true
}

// compileDigitDFA builds the automaton of pattern (Go regexp syntax, anchored with ^ and $)
// by the subset construction over its compiled program, the way the regexp package reads
// it: nil when the pattern does not parse, asserts anything but the beginning and end of the
// text, or needs more than maxDFAStates states.
func compileDigitDFA(pattern string) *digitDFA {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return nil
	}
	const begin, end = syntax.EmptyBeginText | syntax.EmptyBeginLine, syntax.EmptyEndText | syntax.EmptyEndLine
	for _, in := range prog.Inst {
		if in.Op == syntax.InstEmptyWidth && syntax.EmptyOp(in.Arg)&^(begin|end) != 0 {
			return nil
		}
	}
	// closure follows the empty moves from the pcs in todo with the assertions that hold
	// (flags), and returns the instructions that read a rune, sorted, and whether it reached
	// a match.
	seen := make([]uint32, len(prog.Inst)) // the closure that last reached each pc
	var gen uint32
	closure := func(todo []uint32, flags syntax.EmptyOp) (runes []uint32, matched bool) {
		gen++
		for len(todo) > 0 {
			pc := todo[len(todo)-1]
			todo = todo[:len(todo)-1]
			if seen[pc] == gen {
				continue
			}
			seen[pc] = gen
			in := &prog.Inst[pc]
			switch in.Op {
			case syntax.InstAlt, syntax.InstAltMatch:
				todo = append(todo, in.Out, in.Arg)
			case syntax.InstCapture, syntax.InstNop:
				todo = append(todo, in.Out)
			case syntax.InstEmptyWidth:
				if syntax.EmptyOp(in.Arg)&^flags == 0 {
					todo = append(todo, in.Out)
				}
			case syntax.InstMatch:
				matched = true
			case syntax.InstRune, syntax.InstRune1, syntax.InstRuneAny, syntax.InstRuneAnyNotNL:
				runes = append(runes, pc)
			}
		}
		slices.Sort(runes)
		return runes, matched
	}
	// A state is the set of pcs the digits read so far lead to, before their empty moves:
	// at the start the beginning of the text holds, and the end holds for its accept.
	type pending struct {
		pcs   []uint32
		start bool
	}
	d := &digitDFA{}
	index := map[string]int32{}
	key := func(pcs []uint32) string {
		b := make([]byte, 0, 4*len(pcs))
		for _, pc := range pcs {
			b = append(b, byte(pc>>24), byte(pc>>16), byte(pc>>8), byte(pc))
		}
		return string(b)
	}
	queue := []pending{{pcs: []uint32{uint32(prog.Start)}, start: true}}
	d.states = append(d.states, dfaState{})
	for n := 0; n < len(queue); n++ {
		p := queue[n]
		flags := syntax.EmptyOp(0)
		if p.start {
			flags = begin
		}
		runes, _ := closure(slices.Clone(p.pcs), flags)
		_, d.states[n].accept = closure(slices.Clone(p.pcs), flags|end)
		for c := range 10 {
			var next []uint32
			for _, pc := range runes {
				if in := &prog.Inst[pc]; in.MatchRune(rune('0' + c)) {
					next = append(next, in.Out)
				}
			}
			if len(next) == 0 {
				d.states[n].next[c] = -1
				continue
			}
			slices.Sort(next)
			next = slices.Compact(next)
			k := key(next)
			i, ok := index[k]
			if !ok {
				if len(d.states) == maxDFAStates {
					return nil
				}
				i = int32(len(d.states))
				index[k] = i
				d.states = append(d.states, dfaState{})
				queue = append(queue, pending{pcs: next})
			}
			d.states[n].next[c] = i
		}
	}
	return d
}

// regionValidator is one region's metadata, compiled.
type regionValidator struct {
	leading *regexp.Regexp // the region's leading digits, when the metadata has them
	general descMatcher
	// types are the descriptions of which one must match; the common ones first, as the
	// order does not change the answer.
	types []descMatcher
}

func newRegionValidator(m *phonenumbers.PhoneMetadata) *regionValidator {
	if m == nil {
		return nil
	}
	r := &regionValidator{general: newDescMatcher(m.GetGeneralDesc())}
	if ld := m.GetLeadingDigits(); ld != "" {
		r.leading = regexp.MustCompile("^(?:" + ld + ")")
	}
	if !m.GetSameMobileAndFixedLinePattern() {
		r.types = append(r.types, newDescMatcher(m.GetMobile()))
	}
	for _, d := range []*phonenumbers.PhoneNumberDesc{m.GetFixedLine(), m.GetPremiumRate(), m.GetTollFree(),
		m.GetSharedCost(), m.GetVoip(), m.GetPersonalNumber(), m.GetPager(), m.GetUan(), m.GetVoicemail()} {
		r.types = append(r.types, newDescMatcher(d))
	}
	return r
}

// hasType reports whether the number has a type in the region (the library's
// getNumberTypeHelper returning other than UNKNOWN).
func (r *regionValidator) hasType(nsn string) bool {
	if !r.general.match(nsn) {
		return false
	}
	for _, t := range r.types {
		if t.match(nsn) {
			return true
		}
	}
	return false
}

// codeValidator is everything a calling code's numbers are checked against.
type codeValidator struct {
	regions []*regionValidator // in the library's order
}

func (c *codeValidator) valid(nsn string) bool {
	if len(c.regions) == 1 {
		return c.regions[0] != nil && c.regions[0].hasType(nsn)
	}
	for _, r := range c.regions {
		if r == nil {
			continue
		}
		if r.leading != nil {
			if r.leading.MatchString(nsn) {
				return r.hasType(nsn)
			}
			continue
		}
		if r.hasType(nsn) {
			return true
		}
	}
	return false
}

var phoneMeta struct {
	once    sync.Once
	ok      bool // the metadata loaded (the library's own init fails without it)
	regions map[string]*phonenumbers.PhoneMetadata
	nongeo  map[int]*phonenumbers.PhoneMetadata
	codes   sync.Map // calling code → *codeValidator (nil: unknown code)
}

func loadPhoneMeta() {
	phoneMeta.regions = map[string]*phonenumbers.PhoneMetadata{}
	phoneMeta.nongeo = map[int]*phonenumbers.PhoneMetadata{}
	coll, err := phonenumbers.MetadataCollection()
	if err != nil {
		return // validNational asks the library itself
	}
	phoneMeta.ok = true
	for _, m := range coll.GetMetadata() {
		if m.GetId() == "001" {
			phoneMeta.nongeo[int(m.GetCountryCode())] = m
		} else {
			phoneMeta.regions[m.GetId()] = m
		}
	}
}

// codeValidatorFor returns the compiled metadata of a calling code, nil when the library
// knows no region for it.
func codeValidatorFor(cc int) *codeValidator {
	if v, ok := phoneMeta.codes.Load(cc); ok {
		return v.(*codeValidator)
	}
	phoneMeta.once.Do(loadPhoneMeta)
	var c *codeValidator
	if regions := phonenumbers.GetRegionCodesForCountryCode(cc); len(regions) > 0 {
		c = &codeValidator{}
		for _, region := range regions {
			m := phoneMeta.regions[region]
			if region == "001" {
				m = phoneMeta.nongeo[cc]
			}
			c.regions = append(c.regions, newRegionValidator(m))
		}
	}
	v, _ := phoneMeta.codes.LoadOrStore(cc, c)
	return v.(*codeValidator)
}

// validNational reports what phonenumbers.IsValidNumber says of the number with calling
// code cc and national significant number nsn (digits, no leading zero).
func validNational(cc int, nsn string) bool {
	c := codeValidatorFor(cc)
	if !phoneMeta.ok {
		c32, nn := int32(cc), uint64(0)
		for i := 0; i < len(nsn); i++ {
			nn = nn*10 + uint64(nsn[i]-'0')
		}
		return phonenumbers.IsValidNumber(&phonenumbers.PhoneNumber{CountryCode: &c32, NationalNumber: &nn})
	}
	return c != nil && c.valid(nsn)
}
