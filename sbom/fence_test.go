package sbom

import (
	"bufio"
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const (
	modulePath = "github.com/buildguard/buildguard"
	sbomPath   = modulePath + "/sbom"
)

// fenced are the import path prefixes only this package may reach: syft
// and stereoscope, the image reader that comes with it.
var fenced = []string{"github.com/anchore/syft", "github.com/anchore/stereoscope"}

// TestOnlySBOMImportsSyft enforces the fence the design asks for. The rule:
// in the import graph of every package of the module, its tests (internal
// and external) and the end-to-end tests (build tag e2e) included, cut
// every edge into package sbom; then no package under a fenced prefix is
// reachable from any of them except sbom itself. So a package may depend
// on syft only through sbom (internal/cli and cmd/buildguard do), and no
// package may import syft directly or through another library.
func TestOnlySBOMImportsSyft(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the slow dependency fence in -short mode")
	}
	graph := goList(t, "-deps", "-test", "-tags=e2e", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", modulePath+"/...")
	roots := goList(t, "-test", "-tags=e2e", "-f", "{{.ImportPath}}", modulePath+"/...")
	if len(graph) < 1000 {
		t.Fatalf("go list found only %d packages in the module's import graph", len(graph))
	}
	checked := 0
	for root := range roots {
		if isSBOM(root) {
			continue
		}
		checked++
		if path := reachFenced(graph, root); path != nil {
			t.Errorf("%s reaches %s without going through %s:\n  %s", root, path[len(path)-1], sbomPath, strings.Join(path, "\n  "))
		}
	}
	if checked < 10 {
		t.Fatalf("checked only %d packages", checked)
	}
	// The fence must not hold vacuously: sbom itself reaches syft.
	if reachFenced(graph, sbomPath) == nil {
		t.Fatalf("%s does not reach syft: the fence test checks nothing", sbomPath)
	}
}

// goList runs go list and maps each output line's first field to the rest.
func goList(t *testing.T, args ...string) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-e"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v\n%s", args, err, stderr.Bytes())
	}
	g := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		// An import path may carry a test variant suffix: "p [q.test]".
		line := strings.ReplaceAll(sc.Text(), " [", "\x00[")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		for i := range fields {
			fields[i] = strings.ReplaceAll(fields[i], "\x00[", " [")
		}
		g[fields[0]] = fields[1:]
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return g
}

// base strips a test variant suffix: "p [q.test]" is p.
func base(pkg string) string {
	if i := strings.Index(pkg, " ["); i >= 0 {
		return pkg[:i]
	}
	return pkg
}

// isSBOM reports whether pkg is package sbom, one of its test variants or
// its test main.
func isSBOM(pkg string) bool {
	b := base(pkg)
	return b == sbomPath || b == sbomPath+"_test" || b == sbomPath+".test"
}

func isFenced(pkg string) bool {
	b := base(pkg)
	return slices.ContainsFunc(fenced, func(p string) bool { return b == p || strings.HasPrefix(b, p+"/") })
}

// reachFenced returns an import chain from root to a fenced package that
// does not pass through sbom, or nil.
func reachFenced(graph map[string][]string, root string) []string {
	parent := map[string]string{root: ""}
	queue := []string{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if isFenced(p) {
			var chain []string
			for ; p != ""; p = parent[p] {
				chain = append([]string{p}, chain...)
			}
			return chain
		}
		for _, imp := range graph[p] {
			if _, seen := parent[imp]; seen || isSBOM(imp) {
				continue
			}
			parent[imp] = p
			queue = append(queue, imp)
		}
	}
	return nil
}
