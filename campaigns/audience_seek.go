package campaigns

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"os"
)

// Offset returns the file offset just after the last row returned, for SeekRow. A resumed
// expansion seeks there instead of reading the rows before it again.
func (a *AudienceReader) Offset() int64 {
	switch s := a.src.(type) {
	case *csvSource:
		return s.base + s.r.InputOffset()
	case *jsonlSource:
		return s.off
	}
	return -1
}

// SeekRow continues reading at a file offset returned by Offset, numbering the next row n+1
// (n is the number of the row Offset was taken after). It must be called before any row is
// read. An offset past the end of the file is an error.
func (a *AudienceReader) SeekRow(offset int64, n int) error {
	if a.n != 0 {
		return fmt.Errorf("audience %s: seek after reading rows", a.path)
	}
	switch s := a.src.(type) {
	case *csvSource:
		if err := seekFile(s.f, offset); err != nil {
			return fmt.Errorf("audience %s: %w", a.path, err)
		}
		a.bounded.reset(offset)
		r := csv.NewReader(bufio.NewReaderSize(a.bounded, 64<<10))
		r.ReuseRecord = true
		r.FieldsPerRecord = -1
		s.r, s.base = r, offset
	case *jsonlSource:
		if err := seekFile(s.f, offset); err != nil {
			return fmt.Errorf("audience %s: %w", a.path, err)
		}
		a.bounded.reset(offset)
		s.r.Reset(a.bounded)
		s.off = offset
	default:
		return fmt.Errorf("audience %s: cannot seek", a.path)
	}
	a.n = n
	return nil
}

// seekFile moves f to offset, which must lie within the file.
func seekFile(f *os.File, offset int64) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if offset < 0 || offset > st.Size() {
		return fmt.Errorf("offset %d outside the file (%d bytes): the file changed", offset, st.Size())
	}
	_, err = f.Seek(offset, io.SeekStart)
	return err
}
