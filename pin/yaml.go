package pin

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// maxYAMLDocuments bounds the documents of one multi-document YAML file.
const maxYAMLDocuments = 10000

// scanYAML finds image references in YAML: buildguard.yaml image fields,
// GitHub Actions workflows (jobs.*.container, services.*.image,
// uses: docker://...) and Kubernetes, Tekton and similar manifests (every
// image: field). Multi-document files are read whole.
func scanYAML(path string, data []byte) ([]*Occurrence, error) {
	lines := lineStarts(data)
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []*Occurrence
	for n := 0; ; n++ {
		if n >= maxYAMLDocuments {
			return nil, &ScanError{File: path, Err: fmt.Errorf("more than %d YAML documents", maxYAMLDocuments)}
		}
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, &ScanError{File: path, Err: fmt.Errorf("not valid YAML: %w", err)}
		}
		if len(doc.Content) == 0 {
			continue
		}
		root := doc.Content[0]
		y := &yamlScanner{data: data, lines: lines}
		switch {
		case isBuildguardConfig(root):
			y.buildguard(root)
		default:
			y.workflow = mapValue(root, "jobs") != nil
			y.walk(root, "", 0)
		}
		out = append(out, y.out...)
	}
	return out, nil
}

type yamlScanner struct {
	data     []byte
	lines    []int
	workflow bool
	out      []*Occurrence
}

// maxYAMLDepth bounds recursion over hostile nesting.
const maxYAMLDepth = 200

// walk records every image: scalar, and in workflows container: scalars and
// uses: docker:// steps.
func (y *yamlScanner) walk(n *yaml.Node, path string, depth int) {
	if depth > maxYAMLDepth {
		return
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := joinPath(path, k.Value)
			if v.Kind == yaml.ScalarNode {
				switch {
				case k.Value == "image":
					y.add(v, p, "")
				case k.Value == "container" && y.workflow:
					y.add(v, p, "")
				case k.Value == "uses" && strings.HasPrefix(v.Value, "docker://"):
					y.add(v, p, "docker://")
				}
				continue
			}
			y.walk(v, p, depth+1)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			y.walk(c, fmt.Sprintf("%s[%d]", path, i), depth+1)
		}
	}
}

// buildguard records the images a buildguard.yaml consumes. publish.image is
// a destination, never pinned.
func (y *yamlScanner) buildguard(root *yaml.Node) {
	if b := mapValue(root, "builder"); b != nil {
		if v := mapValue(b, "image"); v != nil && v.Kind == yaml.ScalarNode {
			y.add(v, "builder.image", "")
		}
	}
	if r := mapValue(root, "reproduce"); r != nil {
		if d := mapValue(r, "diverse"); d != nil && d.Kind == yaml.SequenceNode {
			for i, e := range d.Content {
				if v := mapValue(e, "image"); v != nil && v.Kind == yaml.ScalarNode {
					y.add(v, fmt.Sprintf("reproduce.diverse[%d].image", i), "")
				}
			}
		}
	}
	if v := mapValue(root, "base"); v != nil && v.Kind == yaml.ScalarNode {
		y.add(v, "base", "")
	}
}

// add records the scalar v; prefix is a scheme (docker://) kept in the file.
func (y *yamlScanner) add(v *yaml.Node, where, prefix string) {
	text := strings.TrimPrefix(v.Value, prefix)
	if text == "" {
		return
	}
	o := &Occurrence{Text: text, Where: where, Line: v.Line}
	o.Offset, o.Err = y.offset(v, prefix+text)
	if o.Err == nil {
		o.Offset += len(prefix)
	}
	if isDynamic(text) {
		o.Dynamic = true
	}
	y.out = append(y.out, o)
}

// offset finds the byte offset of a scalar's value in the file and checks
// that the value is written there verbatim, so that a rewrite can splice it.
func (y *yamlScanner) offset(v *yaml.Node, want string) (int, error) {
	if v.Line < 1 || v.Line > len(y.lines) {
		return 0, errors.New("cannot locate the value in the file")
	}
	off := y.lines[v.Line-1]
	for i := 1; i < v.Column && off < len(y.data); i++ {
		_, size := utf8.DecodeRune(y.data[off:])
		off += size
	}
	switch v.Style {
	case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		off++
	case 0, yaml.FlowStyle:
	default:
		return 0, errors.New("block scalars are not rewritten; write the reference as a plain or quoted string")
	}
	if off+len(want) > len(y.data) || string(y.data[off:off+len(want)]) != want {
		return 0, errors.New("the reference is not written verbatim (escapes or line breaks); write it as a plain string")
	}
	return off, nil
}

func isBuildguardConfig(root *yaml.Node) bool {
	v := mapValue(root, "apiVersion")
	return v != nil && strings.HasPrefix(v.Value, "buildguard/")
}

// mapValue returns the value of key in a mapping node, or nil.
func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// lineStarts returns the byte offset at which each line begins.
func lineStarts(data []byte) []int {
	starts := []int{0}
	for i, c := range data {
		if c == '\n' {
			starts = append(starts, i+1)
		}
	}
	return starts
}
