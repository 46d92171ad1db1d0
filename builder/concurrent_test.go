package builder

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// countingLayer counts how often its bytes are read.
type countingLayer struct {
	v1.Layer
	n *atomic.Int64
}

func (l countingLayer) Compressed() (io.ReadCloser, error) {
	l.n.Add(1)
	return l.Layer.Compressed()
}

// bigImage is a deterministic image of files x files of size bytes each:
// the same digest in every process.
func bigImage(t testing.TB, layers, files, size int) v1.Image {
	var ls []v1.Layer
	for i := range layers {
		var ents []tent
		for j := range files {
			ents = append(ents, file(fmt.Sprintf("l%d/f%d", i, j), string(randomBytes(uint64(i*1000+j), size)), 0o644))
		}
		ls = append(ls, layer(t, ents...))
	}
	return image(t, ls...)
}

func checkBigRoot(t *testing.T, root string, layers, files, size int) {
	t.Helper()
	for i := range layers {
		for j := range files {
			if readFile(t, root, fmt.Sprintf("l%d/f%d", i, j)) != string(randomBytes(uint64(i*1000+j), size)) {
				t.Fatalf("l%d/f%d has wrong content", i, j)
			}
		}
	}
}

// TestConcurrentUnpackGoroutines proves two goroutines unpacking one digest
// into one cache both succeed with the same, correct root, and the layers
// are read once (the second waits on the lock and finds the root complete).
func TestConcurrentUnpackGoroutines(t *testing.T) {
	var reads atomic.Int64
	base := bigImage(t, 2, 4, 256<<10)
	ls, _ := base.Layers()
	var counted []v1.Layer
	for _, l := range ls {
		counted = append(counted, countingLayer{l, &reads})
	}
	img := image(t, counted...)
	dir := t.TempDir()
	var wg sync.WaitGroup
	roots := make([]string, 2)
	errs := make([]error, 2)
	for i := range roots {
		wg.Go(func() {
			roots[i], errs[i] = (&Cache{Dir: dir}).Unpack(context.Background(), img)
		})
	}
	wg.Wait()
	for i := range roots {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
	}
	if roots[0] != roots[1] {
		t.Fatalf("roots differ: %s, %s", roots[0], roots[1])
	}
	if got := reads.Load(); got != int64(len(ls)) {
		t.Errorf("layers read %d times, want %d (one unpack)", got, len(ls))
	}
	checkBigRoot(t, roots[0], 2, 4, 256<<10)
}

const helperEnv = "BUILDGUARD_TEST_UNPACK_DIR"

// TestHelperUnpackProcess is the second process of
// TestConcurrentUnpackProcesses; it does nothing in a normal run.
func TestHelperUnpackProcess(t *testing.T) {
	dir := os.Getenv(helperEnv)
	if dir == "" {
		t.Skip("helper process for TestConcurrentUnpackProcesses")
	}
	fmt.Println("READY")
	root, err := (&Cache{Dir: dir}).Unpack(context.Background(), bigImage(t, 2, 8, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("ROOT=" + root)
}

// TestConcurrentUnpackProcesses proves two processes (this test binary
// re-executed) unpacking one digest into one cache at once both succeed
// with one correct root and no leftovers.
func TestConcurrentUnpackProcesses(t *testing.T) {
	if os.Getenv(helperEnv) != "" {
		t.Skip("in the helper process")
	}
	dir := t.TempDir()
	img := bigImage(t, 2, 8, 1<<20) // digest computed before the race starts
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperUnpackProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	var childRoot string
	ready := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for sc.Scan() {
			if sc.Text() == "READY" {
				close(ready)
			}
			if r, ok := strings.CutPrefix(sc.Text(), "ROOT="); ok {
				childRoot = r
			}
		}
	}()
	select {
	case <-ready:
	case <-done:
		t.Fatalf("helper process exited early: %v", cmd.Wait())
	}
	root, err := (&Cache{Dir: dir}).Unpack(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	<-done
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper process: %v", err)
	}
	if childRoot != root {
		t.Fatalf("child root %q, ours %q", childRoot, root)
	}
	checkBigRoot(t, root, 2, 8, 1<<20)
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			t.Errorf("leftover %s", e.Name())
		}
	}
}
