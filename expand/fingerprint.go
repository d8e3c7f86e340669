package expand

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A run reads its audience file in steps, as its backlog frees, and each step seeks to the
// cursor's byte offset. A file rewritten meanwhile (tomorrow's export) would send the rest of
// another audience under this run. So the run records the file's fingerprint when it is
// created, and every step checks it before it reads a row: a file that no longer has it stops
// the expansion (ErrAudienceChanged), and nothing is planned from it.
//
// A file rewritten in place while a step reads it (cp or a shell redirect truncate it and
// write it anew) is read on from the same offset: it ends early, or goes on with another
// audience's rows, and its last row may be cut. So the step holds the file it checked open
// and checks it again as it reads (heldAudience): its size and modification time before each
// batch is planned, and its whole fingerprint before the end of the file is taken as the end
// of the audience.

// ErrAudienceChanged is wrapped when a run's audience file is not the file the run was
// created from: its size, modification time or the bytes of its first or last block differ.
var ErrAudienceChanged = errors.New("the audience file changed since the run started")

// fingerprintBlock is the size of the first and of the last block of the file that the
// fingerprint hashes (the whole file when it is at most twice as large).
const fingerprintBlock = 64 << 10

// fingerprint is what a run records of its audience file.
type fingerprint struct {
	size  int64
	mtime int64 // unix nanoseconds
	sum   string
}

// String is the fingerprint as the run keeps it (ledger.Run.AudienceFP).
func (f fingerprint) String() string {
	return "v1:" + strconv.FormatInt(f.size, 10) + ":" + strconv.FormatInt(f.mtime, 10) + ":" + f.sum
}

func parseFingerprint(s string) (fingerprint, bool) {
	parts := strings.Split(s, ":")
	if len(parts) != 4 || parts[0] != "v1" {
		return fingerprint{}, false
	}
	size, err1 := strconv.ParseInt(parts[1], 10, 64)
	mtime, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil {
		return fingerprint{}, false
	}
	return fingerprint{size: size, mtime: mtime, sum: parts[3]}, true
}

// audienceFingerprint takes the fingerprint of the audience file at path: its size,
// modification time, and a hash of its first and last 64 KiB. It costs one stat and two
// reads of 64 KiB, whatever the file's size. The file is opened as campaigns opens an
// audience: without blocking, and only if it is a regular file.
func audienceFingerprint(path string) (fingerprint, error) {
	f, err := openAudienceFile(path)
	if err != nil {
		return fingerprint{}, err
	}
	defer f.Close()
	return fingerprintOf(f)
}

// openAudienceFile opens the audience file at path as campaigns does: without blocking, and
// only if it is a regular file.
func openAudienceFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	return f, nil
}

// fingerprintOf takes the fingerprint of the open file f (see audienceFingerprint), reading
// at fixed offsets: f's own offset does not move.
func fingerprintOf(f *os.File) (fingerprint, error) {
	st, err := f.Stat()
	if err != nil {
		return fingerprint{}, err
	}
	h := sha256.New()
	buf := make([]byte, fingerprintBlock)
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return fingerprint{}, err
	}
	h.Write(buf[:n])
	if tail := st.Size() - fingerprintBlock; tail > int64(n) {
		n, err = f.ReadAt(buf, tail)
		if err != nil && !errors.Is(err, io.EOF) {
			return fingerprint{}, err
		}
		h.Write(buf[:n])
	}
	return fingerprint{size: st.Size(), mtime: st.ModTime().UnixNano(), sum: hex.EncodeToString(h.Sum(nil)[:16])}, nil
}

// checkAudience returns an error wrapping ErrAudienceChanged when the audience file at path
// no longer has the fingerprint recorded (""; nothing recorded: no check), saying what
// differs.
func checkAudience(path, recorded string) error {
	h, err := holdAudience(path, recorded)
	if err != nil {
		return err
	}
	h.close()
	return nil
}

// heldAudience is the audience file one expansion step reads, held open for the step, with
// the fingerprint its run recorded. A nil heldAudience (no fingerprint recorded) checks
// nothing.
type heldAudience struct {
	f    *os.File
	path string
	want fingerprint
}

// holdAudience opens the audience file at path, checks it against the fingerprint recorded
// (an error wrapping ErrAudienceChanged says what differs) and returns it held open for the
// step's later checks; nil when nothing was recorded. The step's reader opened the same path
// just before, so both read one file.
func holdAudience(path, recorded string) (*heldAudience, error) {
	want, ok := parseFingerprint(recorded)
	if !ok {
		return nil, nil
	}
	f, err := openAudienceFile(path)
	if err != nil {
		return nil, fmt.Errorf("audience %s: %w", path, err)
	}
	h := &heldAudience{f: f, path: path, want: want}
	if err := h.checkWhole(); err != nil {
		f.Close()
		return nil, err
	}
	return h, nil
}

// checkStat checks the held file's size and modification time (one fstat), before the rows
// read so far are planned: a file rewritten in place since the step checked it has changed
// at least one of them.
func (h *heldAudience) checkStat() error {
	if h == nil {
		return nil
	}
	st, err := h.f.Stat()
	if err != nil {
		return fmt.Errorf("audience %s: %w", h.path, err)
	}
	return h.differs(fingerprint{size: st.Size(), mtime: st.ModTime().UnixNano(), sum: h.want.sum})
}

// checkWhole checks the held file's whole fingerprint: when the step starts, and when it has
// read to the end of the file, before that is taken as the end of the audience.
func (h *heldAudience) checkWhole() error {
	if h == nil {
		return nil
	}
	got, err := fingerprintOf(h.f)
	if err != nil {
		return fmt.Errorf("audience %s: %w", h.path, err)
	}
	return h.differs(got)
}

// differs returns an error wrapping ErrAudienceChanged, saying what differs, when got is not
// the fingerprint the run recorded.
func (h *heldAudience) differs(got fingerprint) error {
	want := h.want
	var what []string
	if got.size != want.size {
		what = append(what, fmt.Sprintf("%d bytes, was %d", got.size, want.size))
	}
	if got.mtime != want.mtime {
		what = append(what, fmt.Sprintf("modified %s, was %s", time.Unix(0, got.mtime).UTC().Format(time.RFC3339Nano),
			time.Unix(0, want.mtime).UTC().Format(time.RFC3339Nano)))
	}
	if got.sum != want.sum && got.size == want.size {
		what = append(what, "other bytes")
	}
	if len(what) == 0 {
		return nil
	}
	return fmt.Errorf("%w (%s: %s): nothing is planned from the file as it is now", ErrAudienceChanged, h.path, strings.Join(what, ", "))
}

func (h *heldAudience) close() {
	if h != nil {
		h.f.Close()
	}
}
