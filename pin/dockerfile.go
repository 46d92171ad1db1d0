package pin

import (
	"bytes"
	"errors"
	"regexp"
	"sort"
	"strings"
)

// logical is one Dockerfile instruction after joining continuation lines,
// with the file offset of each of its bytes.
type logical struct {
	text string
	pos  []int
}

// token is a white-space separated word of an instruction.
type token struct {
	text  string
	start int // index into logical.text
}

var (
	directiveRE = regexp.MustCompile(`^#\s*([a-zA-Z]+)\s*=\s*(\S+)\s*$`)
	heredocRE   = regexp.MustCompile(`<<(-?)["']?([A-Za-z_][A-Za-z0-9_]*)["']?`)
	wholeVarRE  = regexp.MustCompile(`^\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))$`)
)

// splitInstructions joins a Dockerfile into instructions: comments, blank
// lines and heredoc bodies dropped, continuation lines joined.
func splitInstructions(data []byte) []logical {
	escape := byte('\\')
	var out []logical
	var cur *logical
	directives := true
	var heredocs []string // pending heredoc terminators, in order
	var stripTabs []bool
	off := 0
	for off < len(data) {
		end := bytes.IndexByte(data[off:], '\n')
		if end < 0 {
			end = len(data)
		} else {
			end += off
		}
		line := string(data[off:end])
		lineOff := off
		off = end + 1
		line = strings.TrimSuffix(line, "\r")

		if len(heredocs) > 0 {
			l := line
			if stripTabs[0] {
				l = strings.TrimLeft(l, "\t")
			}
			if l == heredocs[0] {
				heredocs, stripTabs = heredocs[1:], stripTabs[1:]
			}
			continue
		}
		trimmed := strings.TrimSpace(line)
		if directives {
			if m := directiveRE.FindStringSubmatch(trimmed); m != nil {
				if strings.EqualFold(m[1], "escape") && len(m[2]) == 1 {
					escape = m[2][0]
				}
				continue
			}
			directives = false
		}
		if trimmed == "" || trimmed[0] == '#' {
			continue // comments and blank lines vanish, even inside a continuation
		}
		if cur == nil {
			cur = &logical{}
		} else {
			cur.text += " "
			cur.pos = append(cur.pos, -1)
		}
		body := strings.TrimRight(line, " \t")
		cont := len(body) > 0 && body[len(body)-1] == escape
		if cont {
			body = body[:len(body)-1]
		}
		lead := len(body) - len(strings.TrimLeft(body, " \t"))
		for i := lead; i < len(body); i++ {
			cur.pos = append(cur.pos, lineOff+i)
		}
		cur.text += body[lead:]
		if cont {
			continue
		}
		out = append(out, *cur)
		for _, m := range heredocRE.FindAllStringSubmatch(cur.text, -1) {
			heredocs = append(heredocs, m[2])
			stripTabs = append(stripTabs, m[1] == "-")
		}
		cur = nil
	}
	if cur != nil {
		out = append(out, *cur)
	}
	return out
}

// tokens splits an instruction on white space outside quotes.
func (l logical) tokens() []token {
	var toks []token
	start, quote := -1, byte(0)
	for i := 0; i < len(l.text); i++ {
		c := l.text[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
			if start < 0 {
				start = i
			}
		case c == ' ' || c == '\t':
			if start >= 0 {
				toks = append(toks, token{l.text[start:i], start})
				start = -1
			}
		default:
			if start < 0 {
				start = i
			}
		}
	}
	if start >= 0 {
		toks = append(toks, token{l.text[start:], start})
	}
	return toks
}

// offset maps a span of the instruction to a file offset; ok is false when
// the span is not contiguous in the file (split by a continuation).
func (l logical) offset(start, n int) (int, bool) {
	if n == 0 || start+n > len(l.pos) {
		return 0, false
	}
	first := l.pos[start]
	for i := 1; i < n; i++ {
		if l.pos[start+i] != first+i {
			return 0, false
		}
	}
	return first, first >= 0
}

// argDef is an ARG with a default value.
type argDef struct {
	name, value string
	start       int // of value in ins.text
	ins         logical
	used        bool
}

type dockerfileScanner struct {
	out    []*Occurrence
	global map[string]*argDef // ARGs before the first FROM
	local  map[string]*argDef // ARGs of the current stage
	used   []*argDef          // ARGs whose default is an image reference
	stages map[string]bool    // stage names seen so far, lower case
	nstage int
}

func scanDockerfile(path string, data []byte) ([]*Occurrence, error) {
	s := &dockerfileScanner{global: map[string]*argDef{}, local: map[string]*argDef{}, stages: map[string]bool{}}
	for _, ins := range splitInstructions(data) {
		toks := ins.tokens()
		if len(toks) == 0 {
			continue
		}
		switch strings.ToUpper(toks[0].text) {
		case "ARG":
			for _, a := range args(ins, toks[1:]) {
				if s.nstage == 0 {
					s.global[a.name] = a
				} else {
					s.local[a.name] = a
				}
			}
		case "FROM":
			if err := s.from(ins, toks[1:]); err != nil {
				return nil, &ScanError{File: path, Line: lineAt(data, firstPos(ins)), Err: err}
			}
		case "COPY":
			for _, t := range flags(toks[1:]) {
				if v, ok := strings.CutPrefix(t.text, "--from="); ok {
					s.imageOrStage(ins, v, t.start+len("--from="), "COPY --from")
				}
			}
		case "RUN":
			for _, t := range flags(toks[1:]) {
				v, ok := strings.CutPrefix(t.text, "--mount=")
				if !ok {
					continue
				}
				at := t.start + len("--mount=")
				for _, kv := range strings.Split(v, ",") {
					if from, ok := strings.CutPrefix(kv, "from="); ok {
						s.imageOrStage(ins, from, at+len("from="), "RUN --mount from")
					}
					at += len(kv) + 1
				}
			}
		}
	}
	// An ARG default used as a whole image reference is pinned where it is
	// written; the FROM ${ARG} that uses it stays as it is.
	for _, a := range s.used {
		s.add(a.ins, a.start, a.value, "ARG "+a.name, "")
	}
	sort.SliceStable(s.out, func(i, j int) bool { return s.out[i].Offset < s.out[j].Offset })
	for _, o := range s.out {
		o.Line = lineAt(data, o.Offset)
	}
	return s.out, nil
}

// from handles FROM [--platform=P] IMAGE [AS NAME].
func (s *dockerfileScanner) from(ins logical, toks []token) error {
	platform := ""
	rest := toks
	for len(rest) > 0 && strings.HasPrefix(rest[0].text, "--") {
		if v, ok := strings.CutPrefix(rest[0].text, "--platform="); ok && !isDynamic(v) {
			platform = v
		}
		rest = rest[1:]
	}
	if len(rest) == 0 {
		return errors.New("FROM names no image")
	}
	image := rest[0]
	stage := ""
	switch {
	case len(rest) == 3 && strings.EqualFold(rest[1].text, "AS"):
		stage = strings.ToLower(rest[2].text)
	case len(rest) != 1:
		return errors.New("FROM takes one image and an optional AS name")
	}
	s.local = map[string]*argDef{}
	lower := strings.ToLower(image.text)
	switch {
	case lower == "scratch":
	case s.stages[lower]:
		// FROM an earlier stage: not an image.
	default:
		s.image(ins, image.text, image.start, "FROM", platform, s.global)
	}
	s.nstage++
	if stage != "" {
		s.stages[stage] = true
	}
	return nil
}

// imageOrStage handles the value of COPY --from= and RUN --mount=from=,
// which names a stage (by name or index) or an image.
func (s *dockerfileScanner) imageOrStage(ins logical, v string, start int, where string) {
	if v == "" || s.stages[strings.ToLower(v)] || isDigits(v) {
		return
	}
	s.image(ins, v, start, where, "", s.local, s.global)
}

// image records an image reference, or, for a lone ${ARG}, the ARG default
// that holds it.
func (s *dockerfileScanner) image(ins logical, text string, start int, where, platform string, scopes ...map[string]*argDef) {
	if m := wholeVarRE.FindStringSubmatch(text); m != nil {
		name := m[1] + m[2]
		for _, scope := range scopes {
			if a, ok := scope[name]; ok && a.value != "" && !isDynamic(a.value) {
				if !a.used {
					a.used = true
					s.used = append(s.used, a)
				}
				return
			}
		}
	}
	o := s.add(ins, start, text, where, platform)
	if o != nil && isDynamic(text) {
		o.Dynamic = true
	}
}

// add records an occurrence at ins.text[start:] with the given text.
func (s *dockerfileScanner) add(ins logical, start int, text, where, platform string) *Occurrence {
	o := &Occurrence{Text: text, Where: where, Platform: platform}
	off, ok := ins.offset(start, len(text))
	if !ok {
		o.Offset = firstPos(ins)
		o.Err = errors.New("the reference is split across lines; write it on one line")
	} else {
		o.Offset = off
	}
	s.out = append(s.out, o)
	return o
}

// args parses the NAME[=VALUE] words of an ARG instruction.
func args(ins logical, toks []token) []*argDef {
	var out []*argDef
	for _, t := range toks {
		name, value, ok := strings.Cut(t.text, "=")
		if !ok {
			continue
		}
		start := t.start + len(name) + 1
		if n := len(value); n >= 2 && (value[0] == '"' || value[0] == '\'') && value[n-1] == value[0] {
			value = value[1 : n-1]
			start++
		}
		out = append(out, &argDef{name: name, value: value, start: start, ins: ins})
	}
	return out
}

// flags returns the leading --flag words of an instruction.
func flags(toks []token) []token {
	n := 0
	for n < len(toks) && strings.HasPrefix(toks[n].text, "--") {
		n++
	}
	return toks[:n]
}

func firstPos(ins logical) int {
	for _, p := range ins.pos {
		if p >= 0 {
			return p
		}
	}
	return 0
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}
