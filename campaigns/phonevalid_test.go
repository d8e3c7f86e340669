package campaigns

import (
	"math/rand/v2"
	"sort"
	"strconv"
	"testing"

	"github.com/nyaruka/phonenumbers"
)

// libraryValid is the answer validNational must give: the phone library's own.
func libraryValid(cc int, nsn string) bool {
	nn, err := strconv.ParseUint(nsn, 10, 64)
	if err != nil {
		return false
	}
	c32 := int32(cc)
	return phonenumbers.IsValidNumber(&phonenumbers.PhoneNumber{CountryCode: &c32, NationalNumber: &nn})
}

// TestPhoneValidatorMatchesLibrary compares validNational with the library on every calling
// code: each region's example numbers for every type, each with its last digit changed and
// one digit added and removed, and random numbers of every length from 4 to 14 digits. Both
// answers are counted, so the test fails if either side is never exercised.
func TestPhoneValidatorMatchesLibrary(t *testing.T) {
	t.Parallel()
	var codes []int
	for cc := range phonenumbers.GetSupportedCallingCodes() {
		codes = append(codes, cc)
	}
	sort.Ints(codes)
	rng := rand.New(rand.NewPCG(1, 2))
	var valid, invalid int
	check := func(cc int, nsn string) {
		if nsn == "" || nsn[0] == '0' {
			return
		}
		want := libraryValid(cc, nsn)
		if got := validNational(cc, nsn); got != want {
			t.Errorf("+%d %s: validNational %v, library %v", cc, nsn, got, want)
		}
		if want {
			valid++
		} else {
			invalid++
		}
	}
	types := []phonenumbers.PhoneNumberType{phonenumbers.FIXED_LINE, phonenumbers.MOBILE, phonenumbers.TOLL_FREE,
		phonenumbers.PREMIUM_RATE, phonenumbers.SHARED_COST, phonenumbers.VOIP, phonenumbers.PERSONAL_NUMBER,
		phonenumbers.PAGER, phonenumbers.UAN, phonenumbers.VOICEMAIL}
	for _, cc := range codes {
		var examples []string
		for _, region := range phonenumbers.GetRegionCodesForCountryCode(cc) {
			for _, typ := range types {
				var n *phonenumbers.PhoneNumber
				if region == "001" {
					n = phonenumbers.GetExampleNumberForNonGeoEntity(cc)
				} else {
					n = phonenumbers.GetExampleNumberForType(region, typ)
				}
				if n != nil {
					examples = append(examples, strconv.FormatUint(n.GetNationalNumber(), 10))
				}
			}
		}
		for _, ex := range examples {
			check(cc, ex)
			last := ex[:len(ex)-1]
			check(cc, last+strconv.Itoa(int(ex[len(ex)-1]-'0'+1)%10))
			check(cc, ex+"7")
			check(cc, last)
		}
		for length := 4; length <= 14; length++ {
			for range 20 {
				b := make([]byte, length)
				b[0] = byte('1' + rng.IntN(9))
				for i := 1; i < length; i++ {
					b[i] = byte('0' + rng.IntN(10))
				}
				check(cc, string(b))
			}
		}
	}
	if valid < 1000 || invalid < 1000 {
		t.Fatalf("compared %d valid and %d invalid numbers; want at least 1000 of each", valid, invalid)
	}
	t.Logf("compared %d valid and %d invalid numbers on %d calling codes", valid, invalid, len(codes))
}

// FuzzPhoneValidator holds validNational to the library on any calling code and digits.
func FuzzPhoneValidator(f *testing.F) {
	f.Add(55, "11987654321")
	f.Add(1, "2015550123")
	f.Add(44, "7400123456")
	f.Add(800, "12345678")
	f.Add(7, "9123456789")
	f.Fuzz(func(t *testing.T, cc int, nsn string) {
		if cc < 1 || cc > 999 || nsn == "" || len(nsn) > 14 || nsn[0] == '0' {
			return
		}
		for i := 0; i < len(nsn); i++ {
			if nsn[i] < '0' || nsn[i] > '9' {
				return
			}
		}
		if got, want := validNational(cc, nsn), libraryValid(cc, nsn); got != want {
			t.Fatalf("+%d %s: validNational %v, library %v", cc, nsn, got, want)
		}
	})
}

// TestDigitDFAMatchesRegexp holds every number pattern's automaton to its regexp: on strings
// its own walks accept (each also with one digit changed, added and removed) and on random
// digits of every length, and leaves strings with other characters to the regexp.
func TestDigitDFAMatchesRegexp(t *testing.T) {
	t.Parallel()
	phoneMeta.once.Do(loadPhoneMeta)
	if !phoneMeta.ok {
		t.Skip("no phone metadata")
	}
	var descs []*phonenumbers.PhoneNumberDesc
	for _, m := range phoneMeta.regions {
		descs = append(descs, m.GetGeneralDesc(), m.GetMobile(), m.GetFixedLine(), m.GetPremiumRate(), m.GetTollFree(),
			m.GetSharedCost(), m.GetVoip(), m.GetPersonalNumber(), m.GetPager(), m.GetUan(), m.GetVoicemail())
	}
	for _, m := range phoneMeta.nongeo {
		descs = append(descs, m.GetGeneralDesc(), m.GetMobile(), m.GetFixedLine(), m.GetVoip(), m.GetUan())
	}
	rng := rand.New(rand.NewPCG(3, 4))
	var patterns, compiled, matched, unmatched int
	seen := map[string]bool{}
	for _, desc := range descs {
		m := newDescMatcher(desc)
		if m.re == nil || seen[m.re.String()] {
			continue
		}
		seen[m.re.String()] = true
		patterns++
		if m.dfa == nil {
			continue
		}
		compiled++
		check := func(s string) {
			got, ok := m.dfa.match(s)
			if !ok {
				t.Fatalf("%s: %q not taken as digits", m.re, s)
			}
			if want := m.re.MatchString(s); got != want {
				t.Fatalf("%s on %q: automaton %v, regexp %v", m.re, s, got, want)
			}
			if got {
				matched++
			} else {
				unmatched++
			}
		}
		for range 30 {
			// A walk that stops at the first accepting state past a random length.
			var b []byte
			st, stop := int32(0), rng.IntN(18)
			for len(b) < 20 && !(len(b) >= stop && m.dfa.states[st].accept) {
				var live []int
				for c, nx := range m.dfa.states[st].next {
					if nx >= 0 {
						live = append(live, c)
					}
				}
				if len(live) == 0 {
					break
				}
				c := live[rng.IntN(len(live))]
				b, st = append(b, byte('0'+c)), m.dfa.states[st].next[c]
			}
			s := string(b)
			check(s)
			if s != "" {
				i := rng.IntN(len(s))
				check(s[:i] + strconv.Itoa(rng.IntN(10)) + s[i+1:])
				check(s[:i] + s[i+1:])
			}
			check(s + strconv.Itoa(rng.IntN(10)))
		}
		for length := 0; length <= 17; length++ {
			b := make([]byte, length)
			for i := range b {
				b[i] = byte('0' + rng.IntN(10))
			}
			check(string(b))
		}
		for _, s := range []string{"12a4", "+5511", " 123", "١٢٣"} {
			if _, ok := m.dfa.match(s); ok {
				t.Fatalf("%s: %q taken as digits", m.re, s)
			}
		}
	}
	if compiled < patterns*9/10 || matched < 10000 || unmatched < 10000 {
		t.Fatalf("%d of %d patterns compiled, %d strings matched and %d did not; want nine in ten compiled and 10000 of each", compiled, patterns, matched, unmatched)
	}
	t.Logf("%d of %d patterns compiled; %d strings matched, %d did not", compiled, patterns, matched, unmatched)
}
