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
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
)

// Row is one audience row.
type Row struct {
	// N is the 1-based data row number (a CSV header row not counted).
	N int
	// Line is the file line the row starts on.
	Line int
	// Cols maps column names to the row's values. Rows read by Plan and Stream hold only the
	// columns the campaign reads (see AudienceReader.narrow); Next and NextRaw give them all.
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

// rowSource yields raw rows: column values, the line they start on, and about how many bytes
// of memory the row holds (rowBytes).
type rowSource interface {
	next() (cols map[string]string, line int, size int64, err error)
	// narrow makes next keep only the columns keep says yes to; nil keeps them all.
	narrow(keep map[string]bool)
	close() error
}

// rowBytes estimates the memory a row read ahead holds: the Row and its place in a batch,
// the map of its entries columns (about 80 bytes an entry, measured) and the data bytes of
// the values it keeps alive. Reading ahead is bounded by the sum of these (maxInFlight).
func rowBytes(entries int, data int) int64 {
	return 512 + 80*int64(entries) + int64(data)
}

// AudienceReader streams an audience file (CSV with a header row, or JSON Lines when the
// file ends in .jsonl or .ndjson) row by row in constant memory.
type AudienceReader struct {
	src   rowSource
	phone string
	bsuid string
	// phoneOnly is set when the campaign's message cannot go to a BSUID (NeedsPhone).
	phoneOnly bool
	langCol   string
	langs     map[string]bool
	defLang   string
	region    string
	n         int
	path      string
	maxRows   int
	bounded   *boundedReader
	// uses are the columns the reader itself and the run read from a row besides the
	// templates: phone, bsuid, language, time zone and the on_reply follow-ups' columns.
	uses []string
	// size is rowBytes of the last row read.
	size int64
}

// IsJSONL reports whether an audience file is read as JSON Lines.
func IsJSONL(path string) bool {
	p := strings.ToLower(path)
	return strings.HasSuffix(p, ".jsonl") || strings.HasSuffix(p, ".ndjson")
}

// OpenAudience opens the definition's audience file (and reads a CSV file's header row). The
// file must be a regular file inside the campaigns root (see FileRules); it is read within
// the definition's bounds. Every error is an *AudienceError naming the file, never quoting
// its content beyond column names.
func OpenAudience(d *Definition) (*AudienceReader, error) {
	f, err := openAudienceFile(d)
	if err != nil {
		return nil, err
	}
	a, err := openReader(d, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return a, nil
}

// noIDColumnError is a CSV header without the column of the recipients' numbers (or BSUIDs):
// its place in the campaign file is audience.phone's (AudienceError.FieldError).
type noIDColumnError struct{ error }

func (e noIDColumnError) Unwrap() error { return e.error }

func openReader(d *Definition, f *os.File) (*AudienceReader, error) {
	path := d.AudiencePath()
	rules := d.FileRules()
	fail := func(line int, err error) error { return &AudienceError{Path: path, Line: line, Err: err} }
	bounded := newBoundedReader(f, rules, !IsJSONL(path))
	br := bufio.NewReaderSize(bounded, 64<<10)
	// Tolerate a UTF-8 byte order mark; refuse UTF-16 and UTF-32 (read as UTF-8 they give
	// garbled column names) and files with NUL bytes (binary, or UTF-16 without a mark).
	var base int64
	head, _ := br.Peek(512)
	switch {
	case bytes.HasPrefix(head, []byte{0xEF, 0xBB, 0xBF}):
		_, _ = br.Discard(3)
		base = 3
	case bytes.HasPrefix(head, []byte{0xFF, 0xFE, 0, 0}), bytes.HasPrefix(head, []byte{0, 0, 0xFE, 0xFF}):
		return nil, fail(0, fmt.Errorf("%w: the file is UTF-32 (it starts with a UTF-32 byte order mark); save it as UTF-8", ErrEncoding))
	case bytes.HasPrefix(head, []byte{0xFF, 0xFE}), bytes.HasPrefix(head, []byte{0xFE, 0xFF}):
		return nil, fail(0, fmt.Errorf("%w: the file is UTF-16 (it starts with a UTF-16 byte order mark); save it as UTF-8", ErrEncoding))
	case bytes.IndexByte(head, 0) >= 0:
		return nil, fail(0, fmt.Errorf("%w: the file starts with NUL bytes (binary data, or UTF-16 without a byte order mark)", ErrEncoding))
	}
	a := &AudienceReader{phone: d.Audience.Phone, bsuid: d.Audience.BSUID, langCol: d.Audience.Language,
		defLang: d.Template.Language, region: d.Audience.DefaultRegion, path: path, langs: map[string]bool{},
		maxRows: rules.MaxRows, bounded: bounded, phoneOnly: d.NeedsPhone()}
	for _, c := range append([]string{a.phone, a.bsuid, a.langCol, d.Audience.Timezone}, d.OnReply.Columns()...) {
		if c != "" {
			a.uses = append(a.uses, c)
		}
	}
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
		if errors.Is(err, io.EOF) {
			return nil, fail(0, errors.New("file is empty (want a header row)"))
		}
		return nil, a.readError(err, 1)
	}
	cs := &csvSource{f: f, r: r, header: append([]string(nil), header...), base: base}
	odd := 0 // the first column whose name does not look like one
	for i, h := range cs.header {
		if !utf8.ValidString(h) {
			return nil, fail(1, fmt.Errorf("%w: header column %d is not valid UTF-8; save the file as UTF-8", ErrEncoding, i+1))
		}
		h = strings.TrimSpace(h)
		cs.header[i] = h
		if odd == 0 && !looksLikeName(h) {
			odd = i + 1
		}
	}
	hasPhone, hasBSUID := false, false
	seen := make(map[string]int, len(cs.header))
	for i, h := range cs.header {
		if j, dup := seen[h]; dup && h != "" {
			if odd > 0 {
				return nil, fail(1, fmt.Errorf("columns %d and %d have the same name (%s)", j+1, i+1, notHeader(odd, len(cs.header))))
			}
			return nil, fail(1, fmt.Errorf("column %s appears twice (columns %d and %d): a row could hold two values for it", colName(h), j+1, i+1))
		}
		seen[h] = i
		hasPhone = hasPhone || h == a.phone
		hasBSUID = hasBSUID || (a.bsuid != "" && h == a.bsuid)
	}
	if !hasPhone && !hasBSUID {
		want := colName(a.phone) + " column"
		if a.bsuid != "" {
			want = colName(a.phone) + " or " + colName(a.bsuid) + " column"
		}
		if odd > 0 {
			return nil, fail(1, noIDColumnError{fmt.Errorf("no %s (%s; an audience file starts with a header row naming its columns)", want, notHeader(odd, len(cs.header)))})
		}
		return nil, fail(1, noIDColumnError{fmt.Errorf("no %s (columns: %s)", want, shownColumns(cs.header))})
	}
	a.src = cs
	return a, nil
}

// notHeader says that the first line of a CSV file, of n columns, does not read as a header
// row because its column col does not look like a name (looksLikeName): it is likely a
// customer's row, and none of it is shown.
func notHeader(col, n int) string {
	return fmt.Sprintf("the first line may not be a header row: column %d of %d does not look like a column name, so none of the line is shown", col, n)
}

// shownColumns lists the first columns of a header whose every name looks like one, for an
// error, each sanitised (safeName).
func shownColumns(header []string) string {
	const most = 10
	names := make([]string, 0, most+1)
	for i, h := range header {
		if i == most {
			names = append(names, fmt.Sprintf("and %d more", len(header)-most))
			break
		}
		names = append(names, colName(h))
	}
	return strings.Join(names, ", ")
}

// readError turns an error reading the file into an *AudienceError at row: a CSV parse
// error keeps its line, column and kind (never the text), a bound its line.
func (a *AudienceReader) readError(err error, row int) error {
	e := &AudienceError{Path: a.path, Row: row, Err: err}
	var pe *csv.ParseError
	var be *boundError
	switch {
	case errors.As(err, &be):
		e.Line, e.Err = be.line, be.err
	case errors.As(err, &pe):
		if a.bounded.known {
			e.Line = pe.StartLine
		}
		e.Err = fmt.Errorf("column %d: %w", pe.Column, pe.Err)
		if errors.Is(pe.Err, csv.ErrFieldCount) {
			e.Err = pe.Err
		}
	default:
		e.Err = pathErr(err)
	}
	if row == 1 && a.src == nil {
		e.Row = 0 // the header row
		e.Err = fmt.Errorf("header row: %w", e.Err)
	}
	return e
}

type csvSource struct {
	f      *os.File
	r      *csv.Reader
	header []string
	// base is the file offset at which r started reading (see offset).
	base int64
	// keep, when set, lists the header columns next keeps, by index (see narrow).
	keep []int
}

func (c *csvSource) narrow(keep map[string]bool) {
	c.keep = nil
	if keep == nil {
		return
	}
	c.keep = []int{}
	for i, h := range c.header {
		if keep[h] {
			c.keep = append(c.keep, i)
		}
	}
}

func (c *csvSource) next() (map[string]string, int, int64, error) {
	rec, err := c.r.Read()
	if err != nil {
		return nil, 0, 0, err
	}
	line, _ := c.r.FieldPos(0)
	if len(rec) > len(c.header) {
		// A value past the header's columns is read by no column: an unquoted comma has most
		// likely split a value, and shifted the row's later values into the wrong columns.
		// Empty ones (a trailing comma) change nothing.
		for _, v := range rec[len(c.header):] {
			if strings.TrimSpace(v) != "" {
				return nil, line, rowBytes(0, 0), fmt.Errorf("%w: %d fields, the header names %d (quote a value that holds a comma)", errExtraFields, len(rec), len(c.header))
			}
		}
	}
	// The values are parts of one string holding the whole record: a row keeping a few
	// columns of a long record gets copies of them, so that the record can be freed.
	data := 0
	for _, v := range rec {
		data += len(v)
	}
	if c.keep == nil {
		cols := make(map[string]string, len(c.header))
		for i, h := range c.header {
			if i < len(rec) {
				cols[h] = rec[i]
			}
		}
		return cols, line, rowBytes(len(cols), data), nil
	}
	kept := 0
	for _, i := range c.keep {
		if i < len(rec) {
			kept += len(rec[i])
		}
	}
	var buf strings.Builder
	clone := 2*kept < data
	if clone {
		buf.Grow(kept)
		data = kept
	}
	cols := make(map[string]string, len(c.keep))
	for _, i := range c.keep {
		if i >= len(rec) {
			break
		}
		v := rec[i]
		switch {
		case !clone:
		case v == "":
			v = "" // an empty part of the record would keep it alive too
		default:
			start := buf.Len()
			buf.WriteString(v)
			v = buf.String()[start:]
		}
		cols[c.header[i]] = v
	}
	return cols, line, rowBytes(len(cols), data), nil
}

func (c *csvSource) close() error { return c.f.Close() }

// errBadRow marks a JSON Lines row that is not a flat JSON object: the row is skipped.
var errBadRow = errors.New("not a JSON object of text, number or boolean values")

// errExtraFields marks a CSV record with a value past the header's columns: the row is
// skipped.
var errExtraFields = errors.New("a value past the header's columns")

type jsonlSource struct {
	f    *os.File
	r    *bufio.Reader
	line int
	// off is the file offset after the last line read.
	off int64
	// keep, when set, names the columns next keeps (see narrow).
	keep map[string]bool
}

func (j *jsonlSource) narrow(keep map[string]bool) { j.keep = keep }

func (j *jsonlSource) next() (map[string]string, int, int64, error) {
	for {
		b, err := j.r.ReadBytes('\n')
		if err != nil && (len(b) == 0 || !errors.Is(err, io.EOF)) {
			return nil, 0, 0, err
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
			return nil, j.line, rowBytes(0, 0), fmt.Errorf("%w (%s)", errBadRow, jsonProblem(err))
		}
		n := len(obj)
		if j.keep != nil {
			n = min(n, len(j.keep))
		}
		cols := make(map[string]string, n)
		data := 0
		for k, v := range obj {
			var s string
			switch v := v.(type) {
			case string:
				s = v
			case json.Number:
				s = v.String()
			case bool:
				s = strconv.FormatBool(v)
			case nil:
			default:
				return nil, j.line, rowBytes(0, 0), fmt.Errorf("%w (column %s holds a list or an object)", errBadRow, colName(k))
			}
			if j.keep == nil || j.keep[k] {
				cols[k] = s
				data += len(k) + len(s)
			}
		}
		return cols, j.line, rowBytes(len(cols), data), nil
	}
}

func (j *jsonlSource) close() error { return j.f.Close() }

// jsonProblem says what is wrong with a JSON line without quoting it.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case err == nil:
		return "null"
	case errors.As(err, &se):
		return fmt.Sprintf("not valid JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		return "a JSON " + te.Value + ", not an object"
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "the JSON value ends early"
	}
	return "not valid JSON"
}

// Next returns the next row, or io.EOF after the last one. A malformed CSV line is an error
// naming the file and line (the rest of the file cannot be read reliably); a JSON Lines row
// that is not a flat object, and a CSV record with a value past the header's columns, are
// returned skipped as invalid_row.
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
	cols, line, size, err := a.src.next()
	a.size = size
	if err != nil && !errors.Is(err, errBadRow) && !errors.Is(err, errExtraFields) {
		if errors.Is(err, io.EOF) {
			return Row{}, io.EOF
		}
		return Row{}, a.readError(err, a.n+1)
	}
	if a.n >= a.maxRows {
		return Row{}, &AudienceError{Path: a.path, Row: a.n + 1,
			Err: fmt.Errorf("%w: more than %d rows (campaigns.max_rows)", ErrTooLarge, a.maxRows)}
	}
	a.n++
	row := Row{N: a.n, Line: line, Cols: cols, Language: a.defLang}
	if err != nil {
		row.SkipReason, row.Err = "invalid_row", err
	}
	return row, nil
}

// narrow makes the reader keep, of each row it reads from now on, only the columns it uses
// itself (phone, bsuid, language, time zone, the follow-ups' columns) and those in reads,
// the columns the campaign's templates read (Renderer.reads); all of them when dynamic, for
// a template that reads the row as a whole or a column by a computed name. A template that
// names a column the row lacks renders it empty (missingkey=zero), so a row without the
// columns no template names renders the same: a wide audience then costs memory for the
// columns the campaign reads, not for every column of the file.
func (a *AudienceReader) narrow(reads []string, dynamic bool) {
	if dynamic {
		a.src.narrow(nil)
		return
	}
	keep := make(map[string]bool, len(a.uses)+len(reads))
	for _, c := range a.uses {
		keep[c] = true
	}
	for _, c := range reads {
		keep[c] = true
	}
	a.src.narrow(keep)
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
		if errors.Is(err, ErrNoCountryCode) {
			err = fmt.Errorf("%w and the audience has no default_region", err)
		}
		// Without a BSUID to fall back to, or when the message cannot go to one, the phone's
		// problem is the row's.
		if bsuid == "" || a.phoneOnly {
			row.SkipReason, row.Err = "invalid_phone", fmt.Errorf("column %s: %w", colName(a.phone), err)
			return
		}
	}
	switch {
	case bsuid != "":
		if len(bsuid) > MaxBSUID {
			row.SkipReason, row.Err = "invalid_bsuid", fmt.Errorf("column %s: %d characters, a BSUID is at most %d", colName(a.bsuid), len(bsuid), MaxBSUID)
			return
		}
		if !bsuidRE.MatchString(bsuid) {
			row.SkipReason, row.Err = "invalid_bsuid", fmt.Errorf("column %s: not a BSUID (country code, '.', letters and digits)", colName(a.bsuid))
			return
		}
		if a.phoneOnly {
			row.SkipReason, row.Err = SkipBSUIDNotSupported, errors.New("an authentication template needs a phone number (Meta error 131062), and the row has only a BSUID")
			return
		}
		row.Recipient = "bsuid:" + bsuid
	case a.bsuid != "":
		row.SkipReason, row.Err = "missing_recipient", fmt.Errorf("columns %s and %s are both empty", colName(a.phone), colName(a.bsuid))
	default:
		row.SkipReason, row.Err = "missing_phone", fmt.Errorf("column %s is empty", colName(a.phone))
	}
}

// SkipBSUIDNotSupported is the skip reason of a row that has only a BSUID when the campaign
// sends an authentication template: Meta refuses those to BSUID recipients (reference 6,
// error 131062), so the row is skipped before any request instead of failing one by one.
const SkipBSUIDNotSupported = "bsuid_not_supported"

// NeedsPhone reports whether d's message can go only to a phone number: a template campaign
// whose template's category needs one (CategoryNeedsPhone). A session campaign is not held
// to it: its session message goes to a BSUID, and the worker keeps its fallback template
// from one.
func (d *Definition) NeedsPhone() bool {
	return !d.IsSession() && CategoryNeedsPhone(d.Template.Category)
}

// CategoryNeedsPhone reports whether templates of category go only to phone numbers: Meta
// refuses authentication templates (one-tap, zero-tap, copy-code) to BSUID recipients with
// error 131062 (reference 6).
func CategoryNeedsPhone(category string) bool { return category == "authentication" }

// IsBSUID reports whether a recipient in Herald's form ("+" and digits, or "bsuid:<BSUID>")
// is a BSUID.
func IsBSUID(recipient string) bool { return strings.HasPrefix(recipient, "bsuid:") }

// MaxBSUID is the longest BSUID Herald sends to, in characters (bsuidRE's are one byte each).
// The reference gives no limit; its example, US.13491208655302741918, has 23. The recipient
// travels in every message's callbackData, which Connectly takes up to 1,024 bytes (reference
// 2.1), beside the run id (up to 94 bytes) and its JSON keys: a longer BSUID failed every send
// with CLIENT_ERROR. 256 is ten times a real one and leaves that room.
const MaxBSUID = 256

// bsuidRE is a business-scoped user id: ISO country code, '.', letters and digits.
var bsuidRE = regexp.MustCompile(`^[A-Z]{2}\.[A-Za-z0-9]+$`)

// Close closes the file.
func (a *AudienceReader) Close() error { return a.src.close() }

// ErrNoCountryCode is NormalizePhone's error for a number written without a country code
// when no region is given.
var ErrNoCountryCode = errors.New("the number has no country code")

// NormalizePhone returns the E.164 form of a phone number, using region for numbers written
// without a country code (none given: ErrNoCountryCode). It rejects numbers that are not
// valid for their country, with an error that does not quote raw (it comes from an audience
// file).
func NormalizePhone(raw, region string) (string, error) {
	if fastValidE164(raw) {
		return raw, nil
	}
	if region == "" && !strings.HasPrefix(raw, "+") && !strings.HasPrefix(raw, "00") {
		return "", ErrNoCountryCode
	}
	num, err := phonenumbers.Parse(raw, region)
	if err != nil {
		return "", fmt.Errorf("not a phone number: %w", err)
	}
	if !phonenumbers.IsValidNumber(num) {
		return "", errors.New("not a valid phone number")
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

// CountLines returns the number of newline-terminated lines in the definition's audience
// file (opened as by OpenAudience), a fast upper bound for its rows used to size the ledger
// before streaming it.
func CountLines(d *Definition) (int, error) {
	f, err := openAudienceFile(d)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r := io.LimitReader(f, d.FileRules().MaxFileBytes+1)
	buf := make([]byte, 256<<10)
	n := 0
	for {
		k, err := r.Read(buf)
		n += bytes.Count(buf[:k], []byte{'\n'})
		if errors.Is(err, io.EOF) {
			return n + 1, nil
		}
		if err != nil {
			return 0, d.fileError(pathErr(err))
		}
	}
}

// CheckAudience opens the definition's audience file and reads its header, without reading
// rows: the checks `campaign validate` makes of the file (where it is, what it is, its size,
// its encoding, its columns). It returns nil or an *AudienceError.
func CheckAudience(d *Definition) error {
	ar, err := OpenAudience(d)
	if err != nil {
		return err
	}
	return ar.Close()
}
