package campaigns

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// Row is one audience row.
type Row struct {
	// N is the 1-based data row number (the header row not counted).
	N int
	// Line is the file line the row starts on.
	Line int
	// Cols maps column names to the row's values.
	Cols map[string]string
	// Recipient is the normalised recipient (E.164); empty when SkipReason is set.
	Recipient string
	// SkipReason says why the row cannot be sent ("invalid_phone", "missing_phone"); Err says more.
	SkipReason string
	Err        error
}

// AudienceReader streams an audience CSV file row by row in constant memory.
type AudienceReader struct {
	f      *os.File
	r      *csv.Reader
	header []string
	phone  int
	region string
	n      int
	path   string
}

// OpenAudience opens the definition's audience file and reads its header row.
func OpenAudience(d *Definition) (*AudienceReader, error) {
	path := d.AudiencePath()
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("audience: %w", err)
	}
	br := bufio.NewReaderSize(f, 64<<10)
	// Tolerate a UTF-8 byte order mark.
	if b, err := br.Peek(3); err == nil && bytes.Equal(b, []byte{0xEF, 0xBB, 0xBF}) {
		_, _ = br.Discard(3)
	}
	r := csv.NewReader(br)
	r.ReuseRecord = true
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if err != nil {
		f.Close()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("audience %s: file is empty (want a header row)", path)
		}
		return nil, fmt.Errorf("audience %s: %w", path, err)
	}
	a := &AudienceReader{f: f, r: r, header: append([]string(nil), header...), phone: -1, region: d.Audience.DefaultRegion, path: path}
	for i, h := range a.header {
		a.header[i] = strings.TrimSpace(h)
		if a.header[i] == d.Audience.Phone {
			a.phone = i
		}
	}
	if a.phone < 0 {
		f.Close()
		return nil, fmt.Errorf("audience %s:1: no %q column (columns: %s)", path, d.Audience.Phone, strings.Join(a.header, ", "))
	}
	return a, nil
}

// Next returns the next row, or io.EOF after the last one. A malformed CSV line is an error
// naming the file and line.
func (a *AudienceReader) Next() (Row, error) {
	rec, err := a.r.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return Row{}, io.EOF
		}
		return Row{}, fmt.Errorf("audience %s: %w", a.path, err)
	}
	a.n++
	line, _ := a.r.FieldPos(0)
	row := Row{N: a.n, Line: line, Cols: make(map[string]string, len(a.header))}
	for i, h := range a.header {
		if i < len(rec) {
			row.Cols[h] = rec[i]
		}
	}
	raw := ""
	if a.phone < len(rec) {
		raw = strings.TrimSpace(rec[a.phone])
	}
	if raw == "" {
		row.SkipReason, row.Err = "missing_phone", errors.New("phone is empty")
		return row, nil
	}
	e164, err := NormalizePhone(raw, a.region)
	if err != nil {
		row.SkipReason, row.Err = "invalid_phone", err
		return row, nil
	}
	row.Recipient = e164
	return row, nil
}

// Close closes the file.
func (a *AudienceReader) Close() error { return a.f.Close() }

// NormalizePhone returns the E.164 form of a phone number, using region for numbers written
// without a country code. It rejects numbers that are not valid for their country.
func NormalizePhone(raw, region string) (string, error) {
	if fastValidE164(raw) {
		return raw, nil
	}
	if region == "" && !strings.HasPrefix(raw, "+") && !strings.HasPrefix(raw, "00") {
		return "", fmt.Errorf("%q has no country code and the audience has no default_region", raw)
	}
	num, err := phonenumbers.Parse(raw, region)
	if err != nil {
		return "", fmt.Errorf("%q: %w", raw, err)
	}
	if !phonenumbers.IsValidNumber(num) {
		return "", fmt.Errorf("%q is not a valid phone number", raw)
	}
	return phonenumbers.Format(num, phonenumbers.E164), nil
}

// fastValidE164 reports whether raw is already canonical E.164 ("+" and digits, no leading
// zero in the national number) and valid for its country. It skips the phone library's
// general parser (whose regular expressions cost most of an audience's reading time) and asks
// only its validity check; E.164 country codes are prefix-free, so the first 1 to 3 digits
// that name a known code are the code. Anything else goes through the full parser.
func fastValidE164(raw string) bool {
	if len(raw) < 8 || len(raw) > 16 || raw[0] != '+' || raw[1] == '0' {
		return false
	}
	for i := 1; i < len(raw); i++ {
		if raw[i] < '0' || raw[i] > '9' {
			return false
		}
	}
	for n := 1; n <= 3; n++ {
		cc, _ := strconv.Atoi(raw[1 : 1+n])
		if phonenumbers.GetRegionCodeForCountryCode(cc) == phonenumbers.UNKNOWN_REGION {
			continue
		}
		national := raw[1+n:]
		if national == "" || national[0] == '0' {
			return false
		}
		nn, err := strconv.ParseUint(national, 10, 64)
		if err != nil {
			return false
		}
		c32 := int32(cc)
		return phonenumbers.IsValidNumber(&phonenumbers.PhoneNumber{CountryCode: &c32, NationalNumber: &nn})
	}
	return false
}

// CountLines returns the number of newline-terminated lines in a file, a fast upper bound for
// its rows used to size the ledger before streaming it.
func CountLines(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("audience: %w", err)
	}
	defer f.Close()
	buf := make([]byte, 256<<10)
	n := 0
	for {
		k, err := f.Read(buf)
		n += bytes.Count(buf[:k], []byte{'\n'})
		if errors.Is(err, io.EOF) {
			return n + 1, nil
		}
		if err != nil {
			return 0, fmt.Errorf("audience: %w", err)
		}
	}
}
