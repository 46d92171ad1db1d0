// Command fatbin is a large Go binary for the SBOM benchmark: it links
// package sbom, so syft and its hundreds of modules, and does nothing.
package main

import (
	"fmt"

	"github.com/buildguard/buildguard/sbom"
)

func main() {
	fmt.Println(sbom.SyftVersion)
}
