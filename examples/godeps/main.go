// Command godeps is buildguard's example of a Go program with module
// dependencies that are not vendored: buildguard fetches them through the
// module proxy, checks each against go.sum, and the build sees them
// offline (examples/godeps/buildguard.yaml).
package main

import (
	"fmt"

	"github.com/google/uuid"
	"github.com/pkg/errors"
)

func main() {
	id := uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://github.com/buildguard/buildguard"))
	err := errors.Wrap(errors.New("no network in the sandbox"), "and yet it built")
	fmt.Printf("godeps %s: %v\n", id, err)
}
