package campaigns

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// Row is one audience row.
type Row struct {
	// N is the 1-based data row number (a CSV header row not counted).
	N int
	// Line is the file line the row starts on.
	Line int
	// Cols maps column names to the row's values.
	Cols map[string]string
	// Recipient is the normalised recipient: E.164, or "bsuid:<BSUID>"; empty when SkipReason
	// is set.
	Recipient string
	// Language is the template translation for this recipient: the row's language column
	// when it names one of the campaign's languages, else the campaign's default.
	Language string
	// SkipReason says why the row cannot be sent (invalid_phone, missing_phone,
	// missing_recipient, invalid_bsuid, invalid_row); Err says more.
	SkipReason string
	Err        error
}

// rowSource yields raw rows: column values and the line they start on.
type rowSource interface {
	next() (cols map[string]string, line int, err error)
	close() error
}

// AudienceReader streams an audience file (CSV with a header row, or JSON Lines when the
// file ends in .jsonl or .ndjson) row by row in constant memory.
type AudienceReader struct {
	src     rowSource
	phone   string
	bsuid   string
	langCol string
	langs   map[string]bool
	defLang string
	region  string
	n       int
	path    string
}

// IsJSONL reports whether an audience file is read as JSON Lines.
func IsJSONL(path string) bool {
	p := strings.ToLower(path)
	return strings.HasSuffix(p, ".jsonl") || strings.HasSuffix(p, ".ndjson")
}

// OpenAudience opens the definition's audience file (and reads a CSV file's header row).
func OpenAudience(d *Definition) (*AudienceReader, error) {
	path := d.AudiencePath()
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("audience: %w", err)
	}
	br := bufio.NewReaderSize(f, 64<<10)
	// Tolerate a UTF-8 byte order mark.
	var base int64
	if b, err := br.Peek(3); err == nil && bytes.Equal(b, []byte{0xEF, 0xBB, 0xBF}) {
		_, _ = br.Discard(3)
		base = 3
	}
	a := &AudienceReader{phone: d.Audience.Phone, bsuid: d.Audience.BSUID, langCol: d.Audience.Language,
		defLang: d.Template.Language, region: d.Audience.DefaultRegion, path: path, langs: map[string]bool{}}
	for _, l := range d.Template.Languages {
		a.langs[l] = true
	}
	if IsJSONL(path) {
		a.src = &jsonlSource{f: f, r: br, off: base}
		return a, nil
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
	cs := &csvSource{f: f, r: r, header: append([]string(nil), header...), base: base}
	hasPhone, hasBSUID := false, false
	for i, h := range cs.header {
		cs.header[i] = strings.TrimSpace(h)
		hasPhone = hasPhone || cs.header[i] == a.phone
		hasBSUID = hasBSUID || (a.bsuid != "" && cs.header[i] == a.bsuid)
	}
	if !hasPhone && !hasBSUID {
		f.Close()
		want := fmt.Sprintf("%q column", a.phone)
		if a.bsuid != "" {
			want = fmt.Sprintf("%q or %q column", a.phone, a.bsuid)
		}
		return nil, fmt.Errorf("audience %s:1: no %s (columns: %s)", path, want, strings.Join(cs.header, ", "))
	}
	a.src = cs
	return a, nil
}

type csvSource struct {
	f      *os.File
	r      *csv.Reader
	header []string
	// base is the file offset at which r started reading (see offset).
	base int64
}

func (c *csvSource) next() (map[string]string, int, error) {
	rec, err := c.r.Read()
	if err != nil {
		return nil, 0, err
	}
	line, _ := c.r.FieldPos(0)
	cols := make(map[string]string, len(c.header))
	for i, h := range c.header {
		if i < len(rec) {
			cols[h] = rec[i]
		}
	}
	return cols, line, nil
}

func (c *csvSource) close() error { return c.f.Close() }

// errBadRow marks a JSON Lines row that is not a flat JSON object: the row is skipped.
var errBadRow = errors.New("not a JSON object of text, number or boolean values")

type jsonlSource struct {
	f    *os.File
	r    *bufio.Reader
	line int
	// off is the file offset after the last line read.
	off int64
}

func (j *jsonlSource) next() (map[string]string, int, error) {
	for {
		b, err := j.r.ReadBytes('\n')
		if len(b) == 0 && err != nil {
			return nil, 0, err
		}
		j.off += int64(len(b))
		j.line++
		b = bytes.TrimSpace(b)
		if len(b) == 0 {
			continue // blank lines are not rows
		}
		var obj map[string]any
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if err := dec.Decode(&obj); err != nil || obj == nil {
			return nil, j.line, fmt.Errorf("%w: %v", errBadRow, err)
		}
		cols := make(map[string]string, len(obj))
		for k, v := range obj {
			switch v := v.(type) {
			case string:
				cols[k] = v
			case json.Number:
				cols[k] = v.String()
			case bool:
				cols[k] = strconv.FormatBool(v)
			case nil:
				cols[k] = ""
			default:
				return nil, j.line, fmt.Errorf("%w: %q holds a list or an object", errBadRow, k)
			}
		}
		return cols, j.line, nil
	}
}

func (j *jsonlSource) close() error { return j.f.Close() }

// Next returns the next row, or io.EOF after the last one. A malformed CSV line is an error
// naming the file and line (the rest of the file cannot be read reliably); a JSON Lines row
// that is not a flat object is returned skipped as invalid_row.
func (a *AudienceReader) Next() (Row, error) {
	row, err := a.NextRaw()
	if err != nil {
		return row, err
	}
	a.Resolve(&row)
	return row, nil
}

// NextRaw is Next without Resolve: the row's columns and position only (and invalid_row for
// a bad JSON line). Resolve may then run on other goroutines.
func (a *AudienceReader) NextRaw() (Row, error) {
	cols, line, err := a.src.next()
	if err != nil && !errors.Is(err, errBadRow) {
		if errors.Is(err, io.EOF) {
			return Row{}, io.EOF
		}
		return Row{}, fmt.Errorf("audience %s: %w", a.path, err)
	}
	a.n++
	row := Row{N: a.n, Line: line, Cols: cols, Language: a.defLang}
	if err != nil {
		row.SkipReason, row.Err = "invalid_row", err
	}
	return row, nil
}

// Resolve fills a raw row's recipient (normalised phone, else BSUID) and language, or its
// skip reason. It reads only the reader's settings, so it is safe on several goroutines.
func (a *AudienceReader) Resolve(row *Row) {
	if row.SkipReason != "" {
		return
	}
	cols := row.Cols
	if a.langCol != "" {
		if l := strings.TrimSpace(cols[a.langCol]); a.langs[l] {
			row.Language = l
		}
	}
	phone := strings.TrimSpace(cols[a.phone])
	bsuid := ""
	if a.bsuid != "" {
		bsuid = strings.TrimSpace(cols[a.bsuid])
	}
	if phone != "" {
		e164, err := NormalizePhone(phone, a.region)
		if err == nil {
			row.Recipient = e164
			return
		}
		if bsuid == "" {
			row.SkipReason, row.Err = "invalid_phone", err
			return
		}
	}
	switch {
	case bsuid != "":
		if !bsuidRE.MatchString(bsuid) {
			row.SkipReason, row.Err = "invalid_bsuid", fmt.Errorf("%q is not a BSUID (country code, '.', letters and digits)", bsuid)
			return
		}
		row.Recipient = "bsuid:" + bsuid
	case a.bsuid != "":
		row.SkipReason, row.Err = "missing_recipient", errors.New("phone and bsuid are both empty")
	default:
		row.SkipReason, row.Err = "missing_phone", errors.New("phone is empty")
	}
}

// bsuidRE is a business-scoped user id: ISO country code, '.', letters and digits.
var bsuidRE = regexp.MustCompile(`^[A-Z]{2}\.[A-Za-z0-9]+$`)

// Close closes the file.
func (a *AudienceReader) Close() error { return a.src.close() }

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
// only its validity check (see validNational); E.164 country codes are prefix-free, so the first 1 to 3 digits
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
		return validNational(cc, national)
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
