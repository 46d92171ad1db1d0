// Package strictjson decodes the JSON files buildguard reads back (lockfiles,
// reports, attestations it wrote): exactly one value, no unknown fields,
// nothing after it, and a size bound, so that a file from a newer version or
// a doctored one is refused rather than half read.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// ErrTrailingData is returned when something follows the JSON value.
var ErrTrailingData = errors.New("data after the JSON value")

// Decode decodes data into v. It refuses data longer than maxSize bytes,
// fields v does not have, and anything but white space after the value.
func Decode(data []byte, maxSize int, v any) error {
	if len(data) > maxSize {
		return fmt.Errorf("larger than %d bytes", maxSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return ErrTrailingData
	}
	return nil
}
