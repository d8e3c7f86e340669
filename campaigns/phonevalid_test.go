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
