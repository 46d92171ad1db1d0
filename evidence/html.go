package evidence

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"path"
	"strings"
	"time"
)

// report.html is one self-contained page for a person: no network, no
// script, inline CSS only. Every string in a report can come from an
// attacker (file names, diffs, image references), so the page is built with
// html/template, which escapes each one for where it lands, and it carries a
// Content-Security-Policy that forbids scripts and every fetch besides.
//
// The page is byte-identical for the same report and explanations; only the
// durations section (from timings.json) may change between runs.

//go:embed report.html.tmpl
var reportHTMLTemplate string

var reportHTML = template.Must(template.New("report.html").Funcs(template.FuncMap{
	"link": localLink,
}).Parse(reportHTMLTemplate))

// Bounds on what the page shows of the explanations it is handed.
const (
	maxDiffFileBytes = 16 << 20 // one diff/*.json file
	maxDiffTextBytes = 64 << 10 // one unified diff
	maxMemberDepth   = 6        // archives in archives
	maxListedFiles   = 200      // differing paths listed per mismatch
)

// RenderHTML renders report.html. diffs maps a mismatch's Diff name (as in
// Mismatch.Diff, e.g. "diff/run-1-vs-run-3.json") to that explanation
// file's JSON; a mismatch without one is shown from the report alone. t may
// be nil.
func RenderHTML(r *Report, t *Timings, diffs map[string][]byte) ([]byte, error) {
	r.normalize()
	var buf bytes.Buffer
	if err := reportHTML.Execute(&buf, newPage(r, t, diffs)); err != nil {
		return nil, fmt.Errorf("rendering report.html: %w", err)
	}
	return buf.Bytes(), nil
}

// WriteWithDiffs is [Write] that also hands report.html the explanation of
// each mismatch (see [RenderHTML] for diffs).
func WriteWithDiffs(dir string, r *Report, t *Timings, diffs map[string][]byte) error {
	return write(dir, r, t, diffs)
}

// page is what the template sees.
type page struct {
	R             *Report
	Decision      string // PASS, FAIL or ERROR
	DecisionClass string
	Summary       string
	Epoch         string
	Glance        []glance
	Outputs       int // distinct output digests among the runs
	Runs          []runRow
	Mismatches    []mismatchView
	Stages        []stageRow
	Total         string
}

// glance is one line of the summary under the headline.
type glance struct {
	Mark, Class, Text string
}

type runRow struct {
	Run
	Output      string // A, B, ... one letter per distinct output digest
	Status      string
	Class       string // ok, bad or ""
	Disagreeing bool
}

type mismatchView struct {
	Mismatch
	Shown      []string
	MoreFiles  int
	Detail     *diffFile
	DetailNote string
}

type stageRow struct {
	Name    string
	Seconds string
	Percent int
}

// diffFile is the part of a diff/*.json file (reproduce.Mismatch) the page
// shows.
type diffFile struct {
	Added        []string       `json:"added"`
	Removed      []string       `json:"removed"`
	Explanations []*explanation `json:"explanations"`
}

type explanation struct {
	Path      string         `json:"path"`
	Kind      string         `json:"kind"`
	SizeA     int64          `json:"sizeA"`
	SizeB     int64          `json:"sizeB"`
	FirstDiff int64          `json:"firstDiff"`
	Summary   []string       `json:"summary"`
	Diff      string         `json:"diff"`
	Members   []*explanation `json:"members"`
}

func newPage(r *Report, t *Timings, diffs map[string][]byte) *page {
	p := &page{R: r}
	switch r.Decision {
	case Pass:
		p.Decision, p.DecisionClass = "PASS", "pass"
		p.Summary = "every check passed"
	case Fail:
		p.Decision, p.DecisionClass = "FAIL", "fail"
		p.Summary = fmt.Sprintf("%d violation(s); nothing was published", len(r.Violations))
	default:
		p.Decision, p.DecisionClass = "ERROR", "error"
		p.Summary = "the guard could not complete; nothing was published"
	}
	if r.Source != nil {
		p.Epoch = time.Unix(r.Source.SourceDateEpoch, 0).UTC().Format(time.RFC3339)
	}
	p.Runs, p.Outputs = runRows(r)
	for _, m := range r.Mismatches {
		p.Mismatches = append(p.Mismatches, newMismatchView(m, diffs))
	}
	if t != nil {
		p.Stages, p.Total = stageRows(t.Stages)
	}
	p.Glance = glances(r, p.Outputs)
	return p
}

// glances says in a few lines what was proven and what was not.
func glances(r *Report, outputs int) []glance {
	ok := func(b bool, yes, no string) glance {
		if b {
			return glance{"✓", "ok", yes}
		}
		return glance{"✗", "bad", no}
	}
	var pinned, verified int
	for _, im := range r.Images {
		if im.Pinned {
			pinned++
		}
		if im.Verified {
			verified++
		}
	}
	n := len(r.Images)
	diverse := 0
	for _, run := range r.Runs {
		if run.Diverse {
			diverse++
		}
	}
	out := []glance{
		ok(pinned == n, fmt.Sprintf("all %d image(s) pinned by digest", n), fmt.Sprintf("%d of %d image(s) pinned by digest", pinned, n)),
		ok(verified == n, fmt.Sprintf("all %d image(s) verified", n), fmt.Sprintf("%d of %d image(s) verified", verified, n)),
	}
	switch {
	case len(r.Runs) == 0:
		out = append(out, ok(false, "", "no builds ran"))
	default:
		out = append(out, ok(outputs == 1 && len(r.Mismatches) == 0,
			fmt.Sprintf("%d build(s), every output identical", len(r.Runs)),
			fmt.Sprintf("%d build(s), %d distinct output(s), %d mismatch(es)", len(r.Runs), outputs, len(r.Mismatches))))
	}
	if diverse == 0 {
		out = append(out, glance{"!", "warn", "no independent builder: not proven against a compromised builder"})
	} else {
		out = append(out, glance{"✓", "ok", fmt.Sprintf("checked against %d independent builder run(s)", diverse)})
	}
	if r.SBOM != nil {
		out = append(out, glance{"✓", "ok", fmt.Sprintf("SBOM: %d package(s)", r.SBOM.Packages)})
	} else {
		out = append(out, ok(false, "", "no SBOM"))
	}
	return out
}

// runRows builds the reproducibility matrix: each run, a letter for its
// output (runs with the same letter produced the same bits) and whether it
// agrees with the control, run 1.
func runRows(r *Report) ([]runRow, int) {
	letters := map[string]string{}
	differs := map[int]Mismatch{}
	for _, m := range r.Mismatches {
		differs[m.RunB] = m
	}
	var control string
	rows := make([]runRow, 0, len(r.Runs))
	for _, run := range r.Runs {
		row := runRow{Run: run}
		if d := run.OutputDigest; d != "" {
			if _, ok := letters[d]; !ok {
				letters[d] = outputLetter(len(letters))
			}
			row.Output = letters[d]
		}
		if run.Index == 1 {
			control = run.OutputDigest
		}
		m, mismatched := differs[run.Index]
		switch {
		case run.ExitCode != 0 && mismatched && m.Kind == "varied-run-failed" && m.Variation != "":
			row.Status, row.Class = fmt.Sprintf("failed only when varying %s (exit %d)", m.Variation, run.ExitCode), "bad"
		case run.ExitCode != 0:
			row.Status, row.Class = fmt.Sprintf("build failed (exit %d)", run.ExitCode), "bad"
		case mismatched:
			row.Status, row.Class, row.Disagreeing = fmt.Sprintf("differs from run %d: %s", m.RunA, m.Kind), "bad", true
			if m.Variation != "" {
				row.Status += " (" + m.Variation + ")"
			}
		case run.Index == 1:
			row.Status = "control"
		case run.OutputDigest != "" && run.OutputDigest == control:
			row.Status, row.Class = "same bits as the control", "ok"
		default:
			row.Status, row.Class, row.Disagreeing = "differs from the control", "bad", true
		}
		rows = append(rows, row)
	}
	return rows, len(letters)
}

func outputLetter(i int) string {
	if i < 26 {
		return "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[i : i+1]
	}
	return fmt.Sprintf("#%d", i+1)
}

func newMismatchView(m Mismatch, diffs map[string][]byte) mismatchView {
	v := mismatchView{Mismatch: m, Shown: m.Files}
	if len(v.Shown) > maxListedFiles {
		v.Shown, v.MoreFiles = v.Shown[:maxListedFiles], len(v.Shown)-maxListedFiles
	}
	data, ok := diffs[m.Diff]
	switch {
	case m.Diff == "" || !ok:
		return v
	case len(data) > maxDiffFileBytes:
		v.DetailNote = fmt.Sprintf("the explanation is larger than %d bytes and is not shown here", maxDiffFileBytes)
		return v
	}
	var d diffFile
	if err := json.Unmarshal(data, &d); err != nil {
		v.DetailNote = "the explanation could not be read: " + err.Error()
		return v
	}
	for _, e := range d.Explanations {
		trim(e, 0)
	}
	v.Detail = &d
	return v
}

// trim bounds what an explanation shows: long diffs are cut, deep archive
// nesting is dropped.
func trim(e *explanation, depth int) {
	if e == nil {
		return
	}
	if len(e.Diff) > maxDiffTextBytes {
		e.Diff = strings.ToValidUTF8(e.Diff[:maxDiffTextBytes], "") + "\n… (cut; the whole diff is in the explanation file)"
	}
	if depth >= maxMemberDepth {
		if len(e.Members) > 0 {
			e.Summary = append(e.Summary, fmt.Sprintf("%d nested member(s) not shown", len(e.Members)))
		}
		e.Members = nil
		return
	}
	for _, m := range e.Members {
		trim(m, depth+1)
	}
}

func stageRows(stages []Stage) ([]stageRow, string) {
	var max, total float64
	for _, s := range stages {
		total += s.Seconds
		if s.Seconds > max {
			max = s.Seconds
		}
	}
	rows := make([]stageRow, len(stages))
	for i, s := range stages {
		rows[i] = stageRow{Name: s.Name, Seconds: seconds(s.Seconds)}
		if max > 0 && s.Seconds > 0 {
			rows[i].Percent = max1(int(s.Seconds / max * 100))
		}
	}
	return rows, seconds(total)
}

func max1(n int) int {
	if n < 1 {
		return 1
	}
	return n
}

func seconds(s float64) string {
	d := time.Duration(s * float64(time.Second))
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

// localLink returns p as a relative link inside the evidence directory, or
// "" when p is not one (absolute, with a scheme, or climbing out), so the
// page never points anywhere but beside itself.
func localLink(p string) string {
	c := path.Clean(p)
	if p == "" || strings.Contains(p, ":") || strings.Contains(p, `\`) || path.IsAbs(c) || c == ".." || strings.HasPrefix(c, "../") {
		return ""
	}
	return c
}
