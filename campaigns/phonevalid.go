package campaigns

import (
	"regexp"
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
// TestPhoneValidatorMatchesLibrary and FuzzPhoneValidator hold it to the library.

// descMatcher is one number description: possible lengths and the anchored pattern.
type descMatcher struct {
	lengths []int32
	re      *regexp.Regexp // nil: the description is absent and matches nothing
}

func newDescMatcher(d *phonenumbers.PhoneNumberDesc) descMatcher {
	if d == nil {
		return descMatcher{}
	}
	return descMatcher{lengths: d.GetPossibleLength(), re: regexp.MustCompile("^(?:" + d.GetNationalNumberPattern() + ")$")}
}

func (d descMatcher) match(nsn string) bool {
	if d.re == nil {
		return false
	}
	if len(d.lengths) > 0 && !slices.Contains(d.lengths, int32(len(nsn))) {
		return false
	}
	return d.re.MatchString(nsn)
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
