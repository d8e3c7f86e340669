package campaigns

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/heraldmsg/herald/internal/logx"
)

// Campaign files are untrusted input: the files they name are opened here only, confined to
// a root folder, and read within bounds.

// FileRules confine the files a campaign names and bound what reading them may cost. A zero
// field takes the process default (SetDefaultFileRules), then the built-in default.
type FileRules struct {
	// Root is the folder every file a campaign names must resolve inside, symbolic links
	// followed. Default: the campaign file's folder (the working directory for a definition
	// parsed without a path).
	Root string
	// MaxRecordBytes is the longest CSV record or JSON line, in bytes. Default 65,536.
	MaxRecordBytes int
	// MaxFileBytes is the largest audience file, in bytes. Default 2 GiB.
	MaxFileBytes int64
	// MaxRows is the most rows an audience may have. Default 10,000,000.
	MaxRows int
}

// Built-in bounds (see FileRules).
const (
	DefaultMaxRecordBytes       = 64 << 10
	DefaultMaxFileBytes   int64 = 2 << 30
	DefaultMaxRows              = 10_000_000
)

var defaultRules atomic.Pointer[FileRules]

// SetDefaultFileRules sets the rules of definitions that do not set their own (Files): the
// process's configuration (campaigns.root and the bounds), set once when it is loaded.
func SetDefaultFileRules(r FileRules) { defaultRules.Store(&r) }

// FileRules returns the rules the definition's files are opened and read under.
func (d *Definition) FileRules() FileRules {
	var p FileRules
	if dp := defaultRules.Load(); dp != nil {
		p = *dp
	}
	r := d.Files
	r.Root = cmp.Or(r.Root, p.Root)
	r.MaxRecordBytes = cmp.Or(r.MaxRecordBytes, p.MaxRecordBytes, DefaultMaxRecordBytes)
	r.MaxFileBytes = cmp.Or(r.MaxFileBytes, p.MaxFileBytes, DefaultMaxFileBytes)
	r.MaxRows = cmp.Or(r.MaxRows, p.MaxRows, DefaultMaxRows)
	return r
}

// Position is a line and column in a campaign file.
type Position struct {
	Line, Column int
}

var (
	// ErrOutsideRoot is wrapped by errors for a file that does not resolve inside the
	// campaigns root.
	ErrOutsideRoot = errors.New("outside the campaigns root")
	// ErrNotRegular is wrapped by errors for a file that is not a regular file: a directory,
	// a named pipe, a device, a socket, or a file of the kernel (/proc, /sys).
	ErrNotRegular = errors.New("not a regular file")
	// ErrTooLarge is wrapped by errors for an audience over one of its bounds (file size,
	// record length, rows).
	ErrTooLarge = errors.New("too large")
	// ErrEncoding is wrapped by errors for an audience that is not UTF-8 text.
	ErrEncoding = errors.New("not UTF-8 text")
)

// AudienceError is a problem with an audience file. It names the file, the line and row when
// known, and column names at most: never what the file holds. Campaign and At are set for
// problems with the file as a whole (where it is, what it is), found when it is opened.
type AudienceError struct {
	// Campaign is the campaign file and At where it names the audience (audience.file).
	Campaign string
	At       Position
	// Path is the audience file as the campaign names it (resolved against the campaign
	// file's folder).
	Path string
	// Line is the audience line, Row the data row (0 when not known or not about a row).
	Line, Row int
	Err       error
}

func (e *AudienceError) Error() string {
	if e.Campaign != "" {
		pos := e.Campaign
		if e.At.Line > 0 {
			pos += ":" + strconv.Itoa(e.At.Line) + ":" + strconv.Itoa(e.At.Column)
		}
		return pos + ": audience.file: " + e.Detail()
	}
	return "audience " + e.Detail()
}

// Detail is the error without the campaign position: the audience file, line, row and problem.
func (e *AudienceError) Detail() string {
	var b strings.Builder
	b.WriteString(logx.Escape(e.Path)) // named in the campaign file: untrusted
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Row > 0 {
		b.WriteString("row " + strconv.Itoa(e.Row) + ": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *AudienceError) Unwrap() error { return e.Err }

// FieldError returns the problem as one of the campaign file's problems, at audience.file; a
// header without the phone (or bsuid) column at audience.phone (or audience.bsuid) where the
// campaign file writes it, the column it names being the one to put right.
func (e *AudienceError) FieldError(d *Definition) FieldError {
	field, at := "audience.file", d.AudienceAt
	if errors.As(e.Err, new(noIDColumnError)) {
		switch {
		case d.PhoneAt.Line > 0:
			field, at = "audience.phone", d.PhoneAt
		case d.BSUIDAt.Line > 0:
			field, at = "audience.bsuid", d.BSUIDAt
		}
	}
	return FieldError{File: d.Path, Line: at.Line, Column: at.Column, Field: field, Msg: e.Detail()}
}

// fileError is an AudienceError about the audience file as a whole.
func (d *Definition) fileError(err error) *AudienceError {
	return &AudienceError{Campaign: d.Path, At: d.AudienceAt, Path: d.AudiencePath(), Err: err}
}

// openAudienceFile opens the definition's audience file for reading, refusing a file outside
// the campaigns root (symbolic links followed), anything but a regular file, and a file over
// the size bound. A named pipe is never opened for reading (that would wait for a writer).
func openAudienceFile(d *Definition) (*os.File, error) {
	rules := d.FileRules()
	f, err := openConfined(d.Path, d.AudiencePath(), rules)
	if err != nil {
		return nil, d.fileError(err)
	}
	return f, nil
}

// MaxCampaignFileBytes bounds a campaign file: thousands of times a real one (a few KB, the
// audience being a file of its own), and little enough to read at once.
const MaxCampaignFileBytes = 1 << 20

// ReadFile reads a campaign file as the untrusted input it is, as an audience is opened: a
// regular file only (not a named pipe, a device or a file of the kernel), opened without
// blocking, at most MaxCampaignFileBytes. Every reader of a campaign file comes here, the
// long-lived processes that read a run's file again included. When a campaigns root is
// configured (SetDefaultFileRules), a campaign file that is a symbolic link must lead inside
// it: a link to a key file elsewhere is refused before anything of it is read.
// Its error keeps its cause (errors.Is(err, fs.ErrNotExist)) while its text escapes the path
// it names, which may hold control characters or newlines.
func ReadFile(path string) ([]byte, error) {
	var root string
	if dp := defaultRules.Load(); dp != nil {
		root = dp.Root
	}
	data, err := readFile(path, root)
	if err != nil {
		return nil, escapedError{err}
	}
	return data, nil
}

// escapedError is an error whose text is printed escaped (logx.EscapeControl): one line, no
// control character, whatever path or name it quotes.
type escapedError struct{ err error }

func (e escapedError) Error() string { return logx.EscapeControl(e.err.Error()) }
func (e escapedError) Unwrap() error { return e.err }

// readFile is ReadFile under the campaigns root root ("" when none is configured).
func readFile(path, root string) ([]byte, error) {
	flags := os.O_RDONLY | syscall.O_NONBLOCK
	var before fs.FileInfo
	if root != "" {
		target, err := linkInside(path, root)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if target == "" {
			flags |= syscall.O_NOFOLLOW // not a link: a link put in its place meanwhile is refused
		} else if before, err = os.Stat(target); err != nil {
			return nil, err
		}
	}
	f, err := os.OpenFile(path, flags, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, fmt.Errorf("%s: the file changed while it was opened", path)
		}
		return nil, err // it names the path
	}
	defer f.Close()
	if err := checkOpened(f, before, MaxCampaignFileBytes, "a campaign file may be"); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxCampaignFileBytes+1))
	if err == nil && len(data) > MaxCampaignFileBytes {
		err = fmt.Errorf("%w: more than a campaign file may be (%d bytes)", ErrTooLarge, MaxCampaignFileBytes)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return data, nil
}

// linkInside returns where path leads when it is a symbolic link ("" when it is not one), and
// an error wrapping ErrOutsideRoot when that is outside root (symbolic links followed).
func linkInside(path, root string) (string, error) {
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		return "", nil // opening it names the problem
	}
	rootAbs, err := filepath.Abs(root)
	if err != nil {
		return "", fmt.Errorf("campaigns root: %w", err)
	}
	rootReal, err := filepath.EvalSymlinks(rootAbs)
	if err != nil {
		return "", fmt.Errorf("campaigns root %s: %w", rootAbs, pathErr(err))
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", pathErr(err)
	}
	if !inside(rootReal, real) {
		return "", fmt.Errorf("%w %s: the campaign file is a symbolic link that leads out of it", ErrOutsideRoot, rootAbs)
	}
	return real, nil
}

// openConfined opens path (as a campaign file at campaign names it) inside the rules' root.
func openConfined(campaign, path string, rules FileRules) (*os.File, error) {
	root := rules.Root
	if root == "" {
		root = "."
		if campaign != "" {
			root = filepath.Dir(campaign)
		}
	}
	rootAbs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("campaigns root: %w", err)
	}
	rootReal, err := filepath.EvalSymlinks(rootAbs)
	if err != nil {
		return nil, fmt.Errorf("campaigns root %s: %w", rootAbs, pathErr(err))
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if !inside(rootAbs, abs) && !inside(rootReal, abs) {
		return nil, fmt.Errorf("%w %s (campaigns.root; the default is the campaign file's folder)", ErrOutsideRoot, rootAbs)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, pathErr(err)
	}
	if !inside(rootReal, real) {
		return nil, fmt.Errorf("%w %s: a symbolic link on the way leads out of it", ErrOutsideRoot, rootAbs)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return nil, pathErr(err)
	}
	if err := regular(fi); err != nil {
		return nil, err
	}
	rel, err := filepath.Rel(rootReal, real)
	if err != nil {
		return nil, err
	}
	// The checks above name the problem; os.Root makes them hold at the moment of opening,
	// should a folder on the way be swapped for a link meanwhile. O_NONBLOCK keeps a named
	// pipe put there in the meantime from blocking the open.
	r, err := os.OpenRoot(rootReal)
	if err != nil {
		return nil, fmt.Errorf("campaigns root %s: %w", rootAbs, pathErr(err))
	}
	defer r.Close()
	f, err := r.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
			return nil, pathErr(err)
		}
		return nil, fmt.Errorf("%w %s", ErrOutsideRoot, rootAbs)
	}
	if err := checkOpened(f, fi, rules.MaxFileBytes, "campaigns.max_file_bytes"); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// checkOpened checks an opened file as Herald reads untrusted files: a regular file (and the
// file stat'ed before it was opened, when before is set), not a file of the kernel, of at most
// max bytes (limit names that bound in the error).
func checkOpened(f *os.File, before fs.FileInfo, max int64, limit string) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := regular(st); err != nil {
		return err
	}
	if before != nil && !os.SameFile(before, st) {
		return errors.New("the file changed while it was opened")
	}
	if kind := kernelFS(f); kind != "" {
		return fmt.Errorf("%w: it is a file of the kernel (%s)", ErrNotRegular, kind)
	}
	if st.Size() > max {
		return fmt.Errorf("%w: the file is %d bytes, more than %s (%d)", ErrTooLarge, st.Size(), limit, max)
	}
	return nil
}

// inside reports whether path is root or lies under it (both absolute and clean).
func inside(root, path string) bool {
	rel, err := filepath.Rel(root, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// regular returns an error naming what the file is unless it is a regular file.
func regular(fi fs.FileInfo) error {
	m := fi.Mode()
	var kind string
	switch {
	case m.IsRegular():
		return nil
	case m.IsDir():
		kind = "a directory"
	case m&fs.ModeNamedPipe != 0:
		kind = "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		kind = "a socket"
	case m&fs.ModeDevice != 0:
		kind = "a device"
	default:
		kind = "not a file of data"
	}
	return fmt.Errorf("%w: it is %s", ErrNotRegular, kind)
}

// pathErr keeps the reason of a file system error and drops its operation and path (the
// caller names the file the campaign names, not where links led).
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return reasonError{"no such file", fs.ErrNotExist}
		case errors.Is(err, fs.ErrPermission):
			return reasonError{"permission denied", fs.ErrPermission}
		}
		return pe.Err
	}
	return err
}

// reasonError is a file system error told in a few words, wrapping its fs sentinel.
type reasonError struct {
	msg string
	err error
}

func (e reasonError) Error() string { return e.msg }
func (e reasonError) Unwrap() error { return e.err }

// boundedReader passes an audience file through, ending with an error wrapping ErrTooLarge
// when the file grows past maxFile bytes or one record past maxRecord bytes. A CSV record
// ends at a newline outside double quotes; a JSON line at any newline.
type boundedReader struct {
	r         io.Reader
	maxFile   int64
	maxRecord int
	csv       bool

	n      int64 // bytes passed
	rec    int   // bytes of the record being read
	quoted bool
	// line counts newlines passed; recLine is the line the current record starts on (0 once
	// the reader was moved to an offset whose line is not known).
	line, recLine int
	known         bool
	err           error
}

func newBoundedReader(r io.Reader, rules FileRules, csv bool) *boundedReader {
	return &boundedReader{r: r, maxFile: rules.MaxFileBytes, maxRecord: rules.MaxRecordBytes, csv: csv, recLine: 1, known: true}
}

// reset continues at a file offset, with a fresh record and lines no longer known.
func (b *boundedReader) reset(offset int64) {
	b.n, b.rec, b.quoted, b.err, b.known = offset, 0, false, nil, false
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if room := b.maxFile - b.n + 1; int64(len(p)) > room {
		p = p[:room] // one byte past the bound is enough to know
	}
	n, err := b.r.Read(p)
	for i, c := range p[:n] {
		switch {
		case c == '"' && b.csv:
			b.quoted = !b.quoted
		case c == '\n':
			b.line++
			if !b.quoted {
				b.rec, b.recLine = 0, b.line+1
				continue
			}
		}
		b.rec++
		if b.rec > b.maxRecord {
			b.err = &boundError{line: b.lineOf(), err: fmt.Errorf("%w: a record is longer than %d bytes (campaigns.max_record_bytes)", ErrTooLarge, b.maxRecord)}
			b.n += int64(i)
			return i, b.err
		}
	}
	b.n += int64(n)
	if b.n > b.maxFile {
		b.err = &boundError{err: fmt.Errorf("%w: the file grew past campaigns.max_file_bytes (%d)", ErrTooLarge, b.maxFile)}
		return n, b.err
	}
	return n, err
}

func (b *boundedReader) lineOf() int {
	if !b.known {
		return 0
	}
	return b.recLine
}

// boundError is a bound reached while reading, at a line when known.
type boundError struct {
	line int
	err  error
}

func (e *boundError) Error() string { return e.err.Error() }
func (e *boundError) Unwrap() error { return e.err }

// maxShownName is the most bytes of a column name an error shows.
const maxShownName = 64

// looksLikeName says whether s reads as a column name rather than a value: at most 64 bytes,
// no run of 3 or more digits (a phone number, an account number), no '@' (an address), and no
// '=', ':', '$' or backslash (a line of settings, passwords or environment: KEY=value,
// user:hash). The first line of a file without a header row is a customer's row: its values
// fail this, and errors then show none of it.
func looksLikeName(s string) bool {
	if len(s) > maxShownName || strings.ContainsAny(s, "@=:$\\") {
		return false
	}
	run := 0
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			if run++; run >= 3 {
				return false
			}
		} else {
			run = 0
		}
	}
	return true
}

// safeName returns a column name fit for an error: quoted, printable ASCII only (anything
// else shown as '?'). A name that does not look like one (looksLikeName) is not shown at all,
// and ok is false.
func safeName(s string) (name string, ok bool) {
	if !looksLikeName(s) {
		return "(name not shown)", false
	}
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	return strconv.Quote(string(b)), true
}

// colName is safeName for a name the campaign gives (audience.phone, audience.bsuid) or a
// JSON Lines key.
func colName(s string) string {
	n, _ := safeName(s)
	return n
}
