package pin

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// found is an occurrence reduced to what a user checks: where and what.
type found struct {
	line  int
	text  string
	where string
}

func scanString(t *testing.T, kind Kind, src string) *File {
	t.Helper()
	f, err := Scan("test-file", kind, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range f.Occurrences {
		if o.Err == nil && string(f.Data[o.Offset:o.Offset+len(o.Text)]) != o.Text {
			t.Errorf("occurrence %q at offset %d reads %q", o.Text, o.Offset, f.Data[o.Offset:o.Offset+len(o.Text)])
		}
	}
	return f
}

func summarize(f *File) []found {
	var out []found
	for _, o := range f.Occurrences {
		out = append(out, found{o.Line, o.Text, o.Where})
	}
	return out
}

func TestScanDockerfile(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []found
	}{
		{"plain FROM", "FROM golang:1.26\nRUN go build\n", []found{{1, "golang:1.26", "FROM"}}},
		{"lower-case instruction and comment", "# a comment\nfrom alpine:3.20 # not a comment\n",
			nil}, // "FROM x # y" has three words after FROM: rejected below, not here
		{"platform flag", "FROM --platform=linux/arm64 golang:1.26 AS build\n", []found{{1, "golang:1.26", "FROM"}}},
		{"multi-stage: FROM an earlier stage is not an image", "FROM golang:1.26 AS build\nFROM build AS test\nFROM gcr.io/distroless/static:nonroot\nCOPY --from=build /app /app\nCOPY --from=0 /x /x\n",
			[]found{{1, "golang:1.26", "FROM"}, {3, "gcr.io/distroless/static:nonroot", "FROM"}}},
		{"stage names are case-insensitive", "FROM golang:1.26 AS Build\nFROM BUILD\n", []found{{1, "golang:1.26", "FROM"}}},
		{"COPY --from an image", "FROM scratch\nCOPY --from=busybox:1.36 --chown=0:0 /bin/busybox /busybox\n", []found{{2, "busybox:1.36", "COPY --from"}}},
		{"RUN --mount from an image", "FROM alpine:3.20\nRUN --mount=type=bind,from=golang:1.26,source=/usr/local/go,target=/go go version\n",
			[]found{{1, "alpine:3.20", "FROM"}, {2, "golang:1.26", "RUN --mount from"}}},
		{"RUN --mount from a stage", "FROM alpine:3.20 AS tools\nFROM alpine:3.20\nRUN --mount=from=tools,target=/t ls\n",
			[]found{{1, "alpine:3.20", "FROM"}, {2, "alpine:3.20", "FROM"}}},
		{"ARG default holds the image; FROM ${ARG} left alone", "ARG BASE=golang:1.26\nARG VERSION=1.0\nFROM ${BASE}\n",
			[]found{{1, "golang:1.26", "ARG BASE"}}},
		{"ARG default quoted, $NAME form", "ARG BASE=\"alpine:3.20\"\nFROM $BASE AS b\n", []found{{1, "alpine:3.20", "ARG BASE"}}},
		{"ARG used by COPY --from", "ARG TOOLS=busybox:1.36\nFROM scratch\nCOPY --from=${TOOLS} /bin/busybox /\n", []found{{1, "busybox:1.36", "ARG TOOLS"}}},
		{"partial variable is dynamic", "ARG V=1.26\nFROM golang:${V}\n", []found{{2, "golang:${V}", "FROM"}}},
		{"scratch is not an image", "FROM scratch\n", nil},
		{"continuation lines", "FROM \\\n  --platform=linux/amd64 \\\n  golang:1.26 \\\n  AS build\n", []found{{3, "golang:1.26", "FROM"}}},
		{"comment inside continuation", "RUN echo a \\\n# FROM evil:1\n  b\nFROM alpine:3.20\n", []found{{4, "alpine:3.20", "FROM"}}},
		{"heredoc body is not instructions", "FROM alpine:3.20\nRUN <<EOF\nFROM evil:1\nEOF\nCOPY <<-END /x\n\tFROM evil:2\n\tEND\nFROM busybox:1.36\n",
			[]found{{1, "alpine:3.20", "FROM"}, {8, "busybox:1.36", "FROM"}}},
		{"escape directive", "# escape=`\nFROM `\n  alpine:3.20\n", []found{{3, "alpine:3.20", "FROM"}}},
		{"CRLF line endings", "FROM alpine:3.20\r\nRUN true\r\n", []found{{1, "alpine:3.20", "FROM"}}},
		{"already pinned", "FROM golang:1.26@" + testDigest + "\n", []found{{1, "golang:1.26@" + testDigest, "FROM"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "lower-case instruction and comment" {
				_, err := Scan("Dockerfile", KindDockerfile, []byte(tt.src))
				var se *ScanError
				if !errors.As(err, &se) || se.Line != 2 {
					t.Fatalf("want a ScanError on line 2, got %v", err)
				}
				return
			}
			got := summarize(scanString(t, KindDockerfile, tt.src))
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got  %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestScanDockerfileDynamic(t *testing.T) {
	f := scanString(t, KindDockerfile, "ARG V=1.26\nFROM golang:${V}\nFROM ${UNDECLARED}\n")
	if len(f.Occurrences) != 2 || !f.Occurrences[0].Dynamic || !f.Occurrences[1].Dynamic {
		t.Fatalf("want two dynamic occurrences, got %+v", summarize(f))
	}
}

func TestScanYAML(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []found
	}{
		{"buildguard.yaml: builder, diverse, base; publish is a destination", `apiVersion: buildguard/v1
builder:
  image: golang:1.26   # the compiler
  command: ["go", "build"]
reproduce:
  diverse:
    - image: "ghcr.io/other/go:1.26"
base: 'gcr.io/distroless/static:nonroot'
publish:
  image: registry.example/app:v1
`, []found{{3, "golang:1.26", "builder.image"}, {7, "ghcr.io/other/go:1.26", "reproduce.diverse[0].image"}, {8, "gcr.io/distroless/static:nonroot", "base"}}},
		{"GitHub Actions workflow", `on: push
jobs:
  build:
    runs-on: ubuntu-latest
    container: golang:1.26
    services:
      db:
        image: postgres:16
    steps:
      - uses: actions/checkout@v4
      - uses: docker://alpine:3.20
  other:
    container:
      image: node:22
`, []found{{5, "golang:1.26", "jobs.build.container"}, {8, "postgres:16", "jobs.build.services.db.image"}, {11, "alpine:3.20", "jobs.build.steps[1].uses"}, {14, "node:22", "jobs.other.container.image"}}},
		{"Kubernetes, multi-document", `apiVersion: v1
kind: Pod
spec:
  initContainers:
    - name: init
      image: busybox:1.36
  containers:
    - name: app
      image: ghcr.io/org/app:v1
---
apiVersion: apps/v1
kind: Deployment
spec:
  template:
    spec:
      containers:
        - image: nginx
`, []found{{6, "busybox:1.36", "spec.initContainers[0].image"}, {9, "ghcr.io/org/app:v1", "spec.containers[0].image"}, {17, "nginx", "spec.template.spec.containers[0].image"}}},
		{"Tekton Task steps", `apiVersion: tekton.dev/v1
kind: Task
spec:
  steps:
    - name: build
      image: golang:1.26
      script: go build
  sidecars:
    - image: registry:2
`, []found{{6, "golang:1.26", "spec.steps[0].image"}, {9, "registry:2", "spec.sidecars[0].image"}}},
		{"container: in a non-workflow file is not an image", "container: golang:1.26\n", nil},
		{"expression is dynamic", "jobs:\n  b:\n    container: ${{ matrix.image }}\n", []found{{3, "${{ matrix.image }}", "jobs.b.container"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := summarize(scanString(t, KindYAML, tt.src))
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got  %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestScanYAMLInvalid(t *testing.T) {
	_, err := Scan("k8s.yaml", KindYAML, []byte("spec:\n  image: [unclosed\n"))
	var se *ScanError
	if !errors.As(err, &se) || se.ExitCode() != 2 || !strings.Contains(err.Error(), "not valid YAML") || !strings.Contains(err.Error(), "k8s.yaml") {
		t.Fatalf("want a usage error naming the file and saying it is not valid YAML, got %v", err)
	}
}

func TestScanMalformedReference(t *testing.T) {
	f := scanString(t, KindDockerfile, "FROM alpine:3.20\nFROM Not_Valid:tag\n")
	err := f.Errors()
	if err == nil || !errors.Is(err, ErrMalformedReference) || !strings.Contains(err.Error(), "test-file:2:") {
		t.Fatalf("want a malformed-reference error naming test-file:2, got %v", err)
	}
}

func TestDetectKind(t *testing.T) {
	for path, want := range map[string]Kind{
		"Dockerfile": KindDockerfile, "build/Containerfile": KindDockerfile, "app.Dockerfile": KindDockerfile,
		"Dockerfile.release": KindDockerfile, "ci.yml": KindYAML, "buildguard.yaml": KindYAML,
	} {
		if got, ok := DetectKind(path); !ok || got != want {
			t.Errorf("DetectKind(%q) = %q, %v; want %q", path, got, ok, want)
		}
	}
	if _, ok := DetectKind("main.go"); ok {
		t.Errorf("DetectKind(main.go) succeeded")
	}
}

func TestScanSeedFiles(t *testing.T) {
	f, err := ScanFile("testdata/Dockerfile.multistage")
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(summarize(f))
	want := fmt.Sprint([]found{{2, "gcr.io/distroless/static:nonroot", "ARG BASE"}, {3, "golang:1.26", "ARG GO"}, {6, "busybox:1.36", "COPY --from"}, {8, "alpine:3.20", "RUN --mount from"}})
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
