//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// bgBin is the buildguard binary built once for the whole suite.
var bgBin string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "buildguard-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bgBin = filepath.Join(dir, "buildguard")
	build := exec.CommandContext(context.Background(), "go", "build", "-o", bgBin, "github.com/buildguard/buildguard/cmd/buildguard")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "building buildguard: %v\n", err)
		return 1
	}
	return m.Run()
}
