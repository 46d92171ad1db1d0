package config

import (
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// walker decodes a yaml.Node tree into a Config by the yaml tags of its
// types, checking as it goes what yaml.v3 would not tell with a line and a
// field path: unknown fields, duplicate keys and wrong types. A field with a
// problem is left at its zero value and its path is marked bad, so that
// validation does not report it a second time.
type walker struct {
	col   *collector
	lines map[string]int  // field path -> line, filled as fields are met
	bad   map[string]bool // field paths with a problem already reported
}

var (
	pathType     = reflect.TypeFor[Path]()
	durationType = reflect.TypeFor[Duration]()
	quantityType = reflect.TypeFor[Quantity]()
)

func reflectValue(c *Config) reflect.Value { return reflect.ValueOf(c).Elem() }

// allowedTags are the YAML core tags; others (!!binary, !!set, !!omap,
// application tags such as !foo, the merge key) are refused.
var allowedTags = map[string]bool{
	"!!str": true, "!!int": true, "!!float": true, "!!bool": true,
	"!!null": true, "!!timestamp": true, "!!map": true, "!!seq": true,
}

func (w *walker) fail(line int, path, format string, args ...any) {
	w.bad[path] = true
	w.col.add(line, path, format, args...)
}

// wrongType reports that n is not what the Go type t wants.
func (w *walker) wrongType(line int, path string, t reflect.Type, n *yaml.Node) {
	w.fail(line, path, "want %s, got %s", describeType(t), describeNode(n))
}

// value decodes n into v (which must be settable). path is the field path of
// v and line the line of the key that names it (0: n's own line).
func (w *walker) value(n *yaml.Node, v reflect.Value, path string, line int) {
	if line == 0 {
		line = n.Line
	}
	if n.Kind == yaml.AliasNode {
		w.fail(line, path, "YAML aliases (*%s) are not supported: write the value out", n.Value)
		return
	}
	if !allowedTags[n.ShortTag()] {
		w.fail(line, path, "unsupported YAML tag %s", n.Tag)
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // null (or nothing) leaves the zero value
	}
	t := v.Type()
	switch t {
	case pathType:
		if !stringish(n) {
			w.wrongType(line, path, t, n)
			return
		}
		v.Set(reflect.ValueOf(Path{Text: n.Value}))
		return
	case durationType:
		d, err := parseDuration(n)
		if err != nil {
			w.fail(line, path, "%v", err)
			return
		}
		v.Set(reflect.ValueOf(d))
		return
	case quantityType:
		q, err := parseQuantityNode(n)
		if err != nil {
			w.fail(line, path, "%v", err)
			return
		}
		v.Set(reflect.ValueOf(q))
		return
	}
	switch t.Kind() {
	case reflect.String:
		// Any plain scalar is taken as the text it is written as, so that
		// "CGO_ENABLED: 0" and "command: [make, -j, 4]" mean what they say.
		if !stringish(n) {
			w.wrongType(line, path, t, n)
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(v.Addr().Interface()) != nil {
			w.wrongType(line, path, t, n)
		}
	case reflect.Int, reflect.Int64:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			w.wrongType(line, path, t, n)
			return
		}
		if err := n.Decode(v.Addr().Interface()); err != nil {
			w.fail(line, path, "want %s, got %q (out of range)", describeType(t), n.Value)
		}
	case reflect.Slice:
		w.list(n, v, path, line)
	case reflect.Map:
		w.mapping(n, v, path, line)
	case reflect.Struct:
		w.fields(n, v, path, line)
	default:
		panic(fmt.Sprintf("config: no decoding for %s", t)) // a programming error in this package
	}
}

func (w *walker) list(n *yaml.Node, v reflect.Value, path string, line int) {
	if n.Kind != yaml.SequenceNode {
		w.wrongType(line, path, v.Type(), n)
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, e := range n.Content {
		p := path + "[" + strconv.Itoa(i) + "]"
		w.lines[p] = e.Line
		w.value(e, s.Index(i), p, e.Line)
	}
	v.Set(s)
}

// mapping decodes a map[string]T, such as builder.env.
func (w *walker) mapping(n *yaml.Node, v reflect.Value, path string, line int) {
	if n.Kind != yaml.MappingNode {
		w.wrongType(line, path, v.Type(), n)
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	first := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || !stringish(k) {
			w.col.add(k.Line, path, "want a name as key, got %s", describeNode(k))
			continue
		}
		p := joinPath(path, k.Value)
		if l, dup := first[k.Value]; dup {
			w.col.add(k.Line, p, "duplicate key (first at line %d)", l)
			continue
		}
		first[k.Value] = k.Line
		w.lines[p] = k.Line
		ev := reflect.New(v.Type().Elem()).Elem()
		w.value(val, ev, p, k.Line)
		m.SetMapIndex(reflect.ValueOf(k.Value), ev)
	}
	v.Set(m)
}

// fields decodes a mapping into the struct v by its yaml tags.
func (w *walker) fields(n *yaml.Node, v reflect.Value, path string, line int) {
	if n.Kind != yaml.MappingNode {
		w.wrongType(line, path, v.Type(), n)
		return
	}
	names, index := yamlFields(v.Type())
	first := map[string]int{}
	var misspelt []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			w.col.add(k.Line, path, "want a field name as key, got %s", describeNode(k))
			continue
		}
		p := joinPath(path, k.Value)
		if k.ShortTag() == "!!merge" {
			w.col.add(k.Line, p, "YAML merge keys (<<) are not supported: write the fields out")
			continue
		}
		fi, known := index[k.Value]
		if !known {
			s := suggest(k.Value, names)
			if s != "" {
				w.col.add(k.Line, p, "unknown field; did you mean %q?", s)
				misspelt = append(misspelt, s)
			} else {
				w.col.add(k.Line, p, "unknown field; known fields here: %s", strings.Join(names, ", "))
			}
			continue
		}
		if l, dup := first[k.Value]; dup {
			w.col.add(k.Line, p, "duplicate field (first at line %d)", l)
			continue
		}
		first[k.Value] = k.Line
		w.lines[p] = k.Line
		w.value(val, v.Field(fi), p, k.Line)
	}
	// A field left out because its name was misspelt is reported once, as
	// the misspelling, not a second time as missing.
	for _, s := range misspelt {
		if _, set := first[s]; !set {
			w.bad[joinPath(path, s)] = true
		}
	}
}

// yamlFields lists the yaml names of the exported fields of struct type t, in
// declaration order, and maps each to its field index.
func yamlFields(t reflect.Type) ([]string, map[string]int) {
	var names []string
	index := map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		names = append(names, name)
		index[name] = i
	}
	return names, index
}

// stringish reports whether n is a scalar that reads as a string: any core
// scalar but null.
func stringish(n *yaml.Node) bool {
	if n.Kind != yaml.ScalarNode {
		return false
	}
	switch n.ShortTag() {
	case "!!str", "!!int", "!!float", "!!bool", "!!timestamp":
		return true
	}
	return false
}

// describeType names what a Go type wants, for "want X, got Y" messages.
func describeType(t reflect.Type) string {
	switch t {
	case pathType:
		return "a path"
	case durationType:
		return durationWant
	case quantityType:
		return quantityWant
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean (true or false)"
	case reflect.Int, reflect.Int64:
		return "an integer"
	case reflect.Slice:
		return "a list of " + plural(t.Elem())
	case reflect.Map:
		return "a mapping of names to " + plural(t.Elem())
	default:
		return "a mapping"
	}
}

func plural(t reflect.Type) string {
	d := describeType(t)
	if t.Kind() == reflect.Struct && t != pathType {
		d = "a mapping"
	}
	d = strings.TrimPrefix(strings.TrimPrefix(d, "an "), "a ")
	return d + "s"
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

// joinPath appends a key to a field path: "builder" + "image" is
// "builder.image"; a key that is not a plain name is quoted in brackets,
// as in `builder.env["A B"]`.
func joinPath(parent, key string) string {
	switch {
	case !identRE.MatchString(key):
		return parent + "[" + strconv.Quote(key) + "]"
	case parent == "":
		return key
	default:
		return parent + "." + key
	}
}

// parentPath drops the last element of a field path: "a.b[1]" -> "a.b" ->
// "a" -> "".
func parentPath(p string) string {
	i := max(strings.LastIndexByte(p, '.'), strings.LastIndexByte(p, '['))
	if i <= 0 {
		return ""
	}
	return p[:i]
}

// suggest returns the name in names closest to key, or "" when none is close.
// Case, "-" and "_" are ignored ("trusted_root" suggests "trustedRoot"), and
// a transposition counts as one edit.
func suggest(key string, names []string) string {
	k := normalizeName(key)
	best, bestD := "", 0
	for _, name := range names {
		n := normalizeName(name)
		limit := 1
		switch {
		case len(n) > 10:
			limit = 3
		case len(n) > 5:
			limit = 2
		}
		if d := editDistance(k, n); d <= limit && (best == "" || d < bestD) {
			best, bestD = name, d
		}
	}
	return best
}

func normalizeName(s string) string {
	return strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(s))
}

// editDistance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and adjacent transpositions. Keys
// longer than 64 bytes are never close.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return max(len(a), len(b))
	}
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
