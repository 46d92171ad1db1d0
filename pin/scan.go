package pin

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// MaxFileSize bounds a file pin reads; no Dockerfile or manifest is larger.
const MaxFileSize = 8 << 20

// Kind is the format of a scanned file.
type Kind string

// The file formats pin understands.
const (
	KindDockerfile Kind = "dockerfile"
	KindYAML       Kind = "yaml"
)

// Occurrence is one image reference found in a file.
type Occurrence struct {
	File string `json:"file"`
	// Line is the 1-based line the reference text starts on.
	Line int `json:"line"`
	// Offset is the byte offset of Text in the file; Text is rewritten there.
	Offset int `json:"-"`
	// Text is the reference as written (without quotes or a docker:// prefix).
	Text string `json:"ref"`
	// Where names the construct, e.g. "FROM", "COPY --from", "ARG BASE",
	// "jobs.build.container".
	Where string `json:"where"`
	// Platform is the literal --platform of a FROM, if any.
	Platform string `json:"platform,omitempty"`
	// Dynamic is set when the text is built from variables or expressions
	// and so cannot be pinned where it stands.
	Dynamic bool `json:"dynamic,omitempty"`
	// Ref is the parsed reference; zero when Dynamic or Err is set.
	Ref Ref `json:"-"`
	// Err is set when Text is not a valid reference.
	Err error `json:"-"`
}

// Pos is "FILE:LINE", the way compilers name a place.
func (o *Occurrence) Pos() string { return fmt.Sprintf("%s:%d", o.File, o.Line) }

// File is a scanned file with the references found in it.
type File struct {
	Path        string
	Kind        Kind
	Data        []byte
	Occurrences []*Occurrence
}

// ScanError is a file that cannot be read or parsed. It is a usage error.
type ScanError struct {
	File string
	Line int
	Err  error
}

func (e *ScanError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.File, e.Err)
}

func (e *ScanError) Unwrap() error { return e.Err }

// ExitCode reports a usage error (2): the input needs fixing.
func (e *ScanError) ExitCode() int { return 2 }

// DetectKind tells the format of a file from its name: Dockerfile,
// Containerfile and their *.Dockerfile / Dockerfile.* variants, or .yaml/.yml.
func DetectKind(path string) (Kind, bool) {
	base := strings.ToLower(filepath.Base(path))
	switch {
	case base == "dockerfile" || base == "containerfile",
		strings.HasPrefix(base, "dockerfile.") || strings.HasPrefix(base, "containerfile."),
		strings.HasSuffix(base, ".dockerfile") || strings.HasSuffix(base, ".containerfile"):
		return KindDockerfile, true
	case strings.HasSuffix(base, ".yaml") || strings.HasSuffix(base, ".yml"):
		return KindYAML, true
	}
	return "", false
}

// ScanFile reads path and finds its image references.
func ScanFile(path string) (*File, error) {
	kind, ok := DetectKind(path)
	if !ok {
		return nil, &ScanError{File: path, Err: errors.New("unknown file type: pin reads Dockerfiles, Containerfiles (Dockerfile, *.Dockerfile, Dockerfile.*) and YAML (.yaml, .yml)")}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, &ScanError{File: path, Err: err}
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(f, MaxFileSize+1)); err != nil {
		return nil, &ScanError{File: path, Err: err}
	}
	if buf.Len() > MaxFileSize {
		return nil, &ScanError{File: path, Err: fmt.Errorf("larger than %d MiB", MaxFileSize>>20)}
	}
	return Scan(path, kind, buf.Bytes())
}

// Scan finds the image references in data, which is a file of the given kind.
func Scan(path string, kind Kind, data []byte) (*File, error) {
	if len(data) > MaxFileSize {
		return nil, &ScanError{File: path, Err: fmt.Errorf("larger than %d MiB", MaxFileSize>>20)}
	}
	file := &File{Path: path, Kind: kind, Data: data}
	var err error
	switch kind {
	case KindDockerfile:
		file.Occurrences, err = scanDockerfile(path, data)
	case KindYAML:
		file.Occurrences, err = scanYAML(path, data)
	default:
		err = &ScanError{File: path, Err: fmt.Errorf("unknown file kind %q", kind)}
	}
	if err != nil {
		return nil, err
	}
	for _, o := range file.Occurrences {
		o.File = path
		if o.Dynamic || o.Err != nil {
			continue
		}
		o.Ref, o.Err = ParseRef(o.Text)
	}
	return file, nil
}

// Errors returns the malformed references of the file as one error, or nil.
func (f *File) Errors() error {
	var errs []error
	for _, o := range f.Occurrences {
		if o.Err != nil {
			errs = append(errs, &ScanError{File: o.File, Line: o.Line, Err: o.Err})
		}
	}
	return errors.Join(errs...)
}

// lineAt returns the 1-based line number of byte offset off in data.
func lineAt(data []byte, off int) int {
	return bytes.Count(data[:off], []byte{'\n'}) + 1
}

// isDynamic reports whether text is built from variables or expressions.
func isDynamic(text string) bool {
	return strings.Contains(text, "$") || strings.Contains(text, "{{")
}
