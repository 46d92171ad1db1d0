package releasekit

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestCopyExamplePointsTheFilesAtTheRegistry(t *testing.T) {
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "work")
	if err := os.WriteFile(filepath.Join(src, "buildguard.yaml"), []byte("image: "+ExampleRegistry+"/a:1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte("package main\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(src, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	names, err := CopyExample(src, dst, "127.0.0.1:41234")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names, []string{"buildguard.yaml", "main.go"}) {
		t.Errorf("names %q", names)
	}
	got, err := os.ReadFile(filepath.Join(dst, "buildguard.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "image: 127.0.0.1:41234/a:1\n" {
		t.Errorf("buildguard.yaml: %q", got)
	}
}
