package connectly

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxSessionFile bounds the size of a session message file (ReadSessionFile).
const MaxSessionFile = 1 << 20

// SessionFileError says a session message file is unusable as given: it cannot be opened, it
// is larger than MaxSessionFile, or it does not decode. Its message is its cause's.
type SessionFileError struct{ err error }

func (e SessionFileError) Error() string { return e.err.Error() }
func (e SessionFileError) Unwrap() error { return e.err }

// ReadSessionFile reads a session message from a YAML or JSON file (JSON when its extension
// is .json), with the keys a campaign's message: block takes. Unknown keys are errors. Every
// error but a failed read of an opened file is a SessionFileError.
func ReadSessionFile(path string) (SessionContent, error) {
	var c SessionContent
	f, err := os.Open(path)
	if err != nil {
		return c, SessionFileError{err}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSessionFile+1))
	if err != nil {
		return c, err
	}
	if len(data) > MaxSessionFile {
		return c, SessionFileError{fmt.Errorf("%s: larger than %d bytes", path, MaxSessionFile)}
	}
	if strings.EqualFold(filepath.Ext(path), ".json") {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		err = dec.Decode(&c)
	} else {
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		err = dec.Decode(&c)
	}
	if err != nil {
		return c, SessionFileError{fmt.Errorf("%s: %w", path, err)}
	}
	return c, nil
}
