// Package evidence is the record every stage of a guarded build adds to,
// and that becomes the evidence directory: report.json (byte-identical for
// the same inputs and SOURCE_DATE_EPOCH), timings.json (durations, kept
// apart so the report stays stable), decision.md (the summary for a CI
// step) and report.html (the page for a person).
//
// Stages fill in plain data; only the policy package sets the decision.
package evidence

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/buildguard/buildguard/internal/atomicfile"
	"github.com/buildguard/buildguard/internal/strictjson"
)

// APIVersion is the version of the report format.
const APIVersion = "buildguard/v1"

// Decision is the verdict of a guarded build.
type Decision string

// The decisions. Error means the guard could not decide.
const (
	Pass  Decision = "pass"
	Fail  Decision = "fail"
	Error Decision = "error"
)

// Report is everything found about one guarded build. Its JSON encoding is
// the public report.json format: fields are added, never renamed.
type Report struct {
	APIVersion string   `json:"apiVersion"`
	Decision   Decision `json:"decision"`
	// Violations lists every rule the build broke, not only the first.
	Violations []Violation `json:"violations"`
	// Errors says what could not be done when the decision is "error".
	Errors []string `json:"errors,omitempty"`
	// Notes are plain statements a reader must see, e.g. that no diverse
	// builder was configured.
	Notes  []string `json:"notes,omitempty"`
	Waived []string `json:"waived,omitempty"`
	Source *Source  `json:"source,omitempty"`
	Images []Image  `json:"images"`
	// Dependencies are what the prefetch stage fetched and checked against
	// the source's lockfiles, sorted by type, name, version.
	Dependencies []Dependency `json:"dependencies,omitempty"`
	Runs         []Run        `json:"runs,omitempty"`
	Mismatches   []Mismatch   `json:"mismatches,omitempty"`
	SBOM         *SBOMSummary `json:"sbom,omitempty"`
	// Signing says how what buildguard wrote was signed; nil when
	// nothing was (no signing key).
	Signing   *Signing   `json:"signing,omitempty"`
	Published *Published `json:"published,omitempty"`
}

// The values of Signing.Tlog.
const (
	TlogNone  = "none"
	TlogRekor = "rekor"
)

// Signing says how buildguard signed its statements, build results and
// the published image's signature. It holds no log index: each run logs
// new entries, and the report stays byte-identical; the bundles carry the
// entries and their inclusion proofs.
type Signing struct {
	// KeyID is "sha256:" and the hex SHA-256 of the public key (PKIX DER).
	KeyID string `json:"keyID"`
	// Logged is true when every signature is logged in Logs; false when
	// the bundles carry no transparency-log entry (no signing config),
	// and a verifier must be told to ignore the log.
	Logged bool `json:"logged"`
	// Tlog is TlogRekor or TlogNone.
	Tlog string `json:"tlog"`
	// Logs are the Rekor logs each signature was logged in.
	Logs []SigningLog `json:"logs,omitempty"`
}

// SigningLog is a Rekor log that signatures were logged in.
type SigningLog struct {
	URL        string `json:"url"`
	APIVersion uint32 `json:"apiVersion"`
}

// Dependency is one dependency the prefetch stage fetched (or tried to).
type Dependency struct {
	// Type is gomod, npm or file.
	Type string `json:"type"`
	// Name and Version: a module path and version, an npm package name
	// and version, a file's dest.
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	// PURL is the package URL (pkg:golang/..., pkg:npm/...); for a file,
	// its URL.
	PURL string `json:"purl"`
	// Digest maps algorithm to value: sha256 of the bytes fetched (the
	// module zip, the npm tarball, the file) always; "dirHash" (go.sum's
	// h1:...) for a Go module; "sha512" (hex) or "sha1" for an npm
	// tarball, as its integrity names it.
	//
	// A Go module whose go.mod go.sum pins also has "goModDirHash". One
	// that go.sum pins by its go.mod only (the go command reads it for
	// the module graph, and builds none of its code) has no "dirHash",
	// and its sha256 is the go.mod's. An npm tarball always has "sha512"
	// (hex), computed when its integrity names a weaker hash or none.
	Digest map[string]string `json:"digest"`
	// Pinned is false when the lockfile named it without a hash: it was
	// fetched, and nothing checked it.
	Pinned bool `json:"pinned"`
	// Weak is true when the only hash pinning it is sha1.
	Weak bool `json:"weak,omitempty"`
	// Source is the dependencies entry it came from: its path, or a
	// file's dest.
	Source string `json:"source"`
	// Mismatch, when set, is why its bytes are not what the lockfile pins.
	Mismatch *DependencyMismatch `json:"mismatch,omitempty"`
}

// DependencyMismatch names both hashes of a dependency whose bytes are not
// what its lockfile pins.
type DependencyMismatch struct {
	// What is the part compared: module zip, go.mod, tarball, file.
	What      string `json:"what"`
	Algorithm string `json:"algorithm"`
	Want      string `json:"want"`
	Got       string `json:"got"`
}

// Violation is one broken rule and why.
type Violation struct {
	Rule    string `json:"rule"`
	Message string `json:"message"`
}

// Source describes the source tree that was built.
type Source struct {
	Path   string `json:"path"`
	Digest string `json:"digest,omitempty"`
	// GitCommit is the commit of a git checkout, and Repository its
	// remote "origin" as the provenance records it ("git+https://...",
	// without credentials), empty when not a network URL.
	GitCommit  string `json:"gitCommit,omitempty"`
	Repository string `json:"repository,omitempty"`
	// Uncommitted says the checkout differed from GitCommit (a note names
	// the paths).
	Uncommitted     bool  `json:"uncommitted,omitempty"`
	SourceDateEpoch int64 `json:"sourceDateEpoch"`
	// Scratch says how the disk space of each run's writable copy of the
	// source was bounded.
	Scratch *Scratch `json:"scratch,omitempty"`
}

// Scratch is the bound on a run's writable copies (builder.limits.scratch).
type Scratch struct {
	// Limit is the bound in bytes.
	Limit int64 `json:"limit"`
	// Enforcement is "watched" (measured every few seconds, the build
	// killed past it) or "quota" (a file-system quota).
	Enforcement string `json:"enforcement"`
}

// Image is an image the build consumed and what was proven about it.
type Image struct {
	// Role is builder, diverse or base.
	Role string `json:"role"`
	// Ref is the reference as configured.
	Ref    string `json:"ref"`
	Digest string `json:"digest,omitempty"`
	Pinned bool   `json:"pinned"`
	// Verified is set when signatures and log entries were checked and
	// accepted.
	Verified   bool         `json:"verified"`
	Signers    []Signer     `json:"signers,omitempty"`
	LogEntries []LogEntry   `json:"logEntries,omitempty"`
	Provenance []Provenance `json:"provenance,omitempty"`
	Problems   []string     `json:"problems,omitempty"`
}

// Signer is a verified signature's identity: a key or a certificate.
type Signer struct {
	KeyID   string `json:"keyID,omitempty"`
	Issuer  string `json:"issuer,omitempty"`
	Subject string `json:"subject,omitempty"`
}

// LogEntry is a verified transparency-log entry.
type LogEntry struct {
	LogID string `json:"logID"`
	Index int64  `json:"index"`
}

// Provenance is a verified SLSA provenance statement about an image.
type Provenance struct {
	PredicateType string `json:"predicateType"`
	BuilderID     string `json:"builderID"`
	SourceURI     string `json:"sourceURI,omitempty"`
}

// Run is one build and its result.
type Run struct {
	// Index is 1 for the control run.
	Index int `json:"index"`
	// Purpose is control, varied, diverse, control-repeat (the control
	// again, to tell nondeterminism from a variation) or bisect (a subset
	// of the variations, to name the one that matters).
	Purpose string `json:"purpose,omitempty"`
	// Builder is the digest of the builder image the run used.
	Builder    string   `json:"builder"`
	Diverse    bool     `json:"diverse,omitempty"`
	Variations []string `json:"variations,omitempty"`
	// Mechanisms say how each variation reached the run, by variation:
	// for time "libfaketime+stagger" (a fake clock for dynamically linked
	// programs, and a start more than a second after the control's) or
	// "stagger" (the start only: the image cannot load libfaketime).
	Mechanisms map[string]string `json:"mechanisms,omitempty"`
	// Sandbox is the isolation the run actually had; nil when the run
	// never started.
	Sandbox *Sandbox `json:"sandbox,omitempty"`
	// OutputDigest identifies the output tree manifest.
	OutputDigest string `json:"outputDigest,omitempty"`
	ExitCode     int    `json:"exitCode"`
	// Log is the build log's path inside the evidence directory.
	Log string `json:"log,omitempty"`
}

// Sandbox is the isolation one run had, as the builder made it: with
// runtime auto, a later run may have had another runtime.
type Sandbox struct {
	// Runtime and Version name the OCI runtime ("crun", "1.8.1").
	Runtime string `json:"runtime"`
	Version string `json:"version"`
	// Rootless: buildguard ran as an unprivileged user.
	Rootless bool `json:"rootless"`
	// UserNamespace: the build ran in a user namespace, whose mappings
	// are UIDMap and GIDMap ("0:100000:65536": inside, host, count), in
	// mode IDMapping: "ranged" (the image's owners kept) or "single" (the
	// invoking user alone, as 0: other owners lost, no uid variation).
	UserNamespace bool   `json:"userNamespace"`
	UIDMap        string `json:"uidMap,omitempty"`
	GIDMap        string `json:"gidMap,omitempty"`
	IDMapping     string `json:"idMapping,omitempty"`
	// Network is "none": a network namespace of its own with loopback only.
	Network string `json:"network"`
	// Seccomp names the seccomp filter (builder.SeccompProfile).
	Seccomp string `json:"seccomp"`
	// ReadOnlyRoot: the image's root was read-only.
	ReadOnlyRoot bool `json:"readOnlyRoot"`
	// Limits are the resource limits that applied, and why others did not.
	Limits SandboxLimits `json:"limits"`
}

// SandboxLimits are the resource limits a run had: each "memory=N" or
// "pids=N" with how it was enforced ("cgroup", or the rlimit standing
// in), and the reason a configured limit was not applied.
type SandboxLimits struct {
	Applied []string `json:"applied"`
	Reason  string   `json:"reason,omitempty"`
}

// Mismatch is a pair of runs whose outputs differ.
type Mismatch struct {
	RunA int `json:"runA"`
	RunB int `json:"runB"`
	// Kind is nondeterministic, variation, builder-disagreement or
	// varied-run-failed (run B failed, the control and its repeat built).
	Kind      string `json:"kind"`
	Variation string `json:"variation,omitempty"`
	// Explanation says what Variation changed and what to do about it.
	Explanation string `json:"explanation,omitempty"`
	// BuilderA and BuilderB are the two builder digests of a disagreement.
	BuilderA string   `json:"builderA,omitempty"`
	BuilderB string   `json:"builderB,omitempty"`
	Files    []string `json:"files"`
	// Diff is the explanation's file in the evidence directory.
	Diff string `json:"diff,omitempty"`
}

// SBOMSummary summarises the output's SBOMs.
type SBOMSummary struct {
	Packages int      `json:"packages"`
	Files    []string `json:"files"`
}

// Published is what was pushed on pass.
type Published struct {
	Image  string `json:"image"`
	Digest string `json:"digest"`
}

// Timings holds stage durations: they change on every run, so they live in
// timings.json, never in report.json.
type Timings struct {
	Stages []Stage `json:"stages"`
	// Runs are how long each run took, from starting the runtime until its
	// container was deleted, in run order.
	Runs []RunTiming `json:"runs,omitempty"`
}

// RunTiming is one run's duration.
type RunTiming struct {
	Index   int     `json:"index"`
	Seconds float64 `json:"seconds"`
}

// Stage is one named stage and how long it took.
type Stage struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
}

// New returns an empty report for a build not yet decided.
func New() *Report {
	return &Report{APIVersion: APIVersion, Decision: Error, Violations: []Violation{}, Images: []Image{}}
}

// normalize puts every list whose order is not meaningful into a canonical
// order, so that goroutine and map order never reach the report.
func (r *Report) normalize() {
	sort.SliceStable(r.Violations, func(i, j int) bool {
		a, b := r.Violations[i], r.Violations[j]
		if a.Rule != b.Rule {
			return a.Rule < b.Rule
		}
		return a.Message < b.Message
	})
	sort.SliceStable(r.Images, func(i, j int) bool {
		a, b := r.Images[i], r.Images[j]
		if roleRank(a.Role) != roleRank(b.Role) {
			return roleRank(a.Role) < roleRank(b.Role)
		}
		return a.Ref < b.Ref
	})
	sort.SliceStable(r.Runs, func(i, j int) bool { return r.Runs[i].Index < r.Runs[j].Index })
	sort.SliceStable(r.Mismatches, func(i, j int) bool {
		a, b := r.Mismatches[i], r.Mismatches[j]
		if a.RunA != b.RunA {
			return a.RunA < b.RunA
		}
		return a.RunB < b.RunB
	})
	sort.Strings(r.Waived)
	if r.Violations == nil {
		r.Violations = []Violation{}
	}
	if r.Images == nil {
		r.Images = []Image{}
	}
}

func roleRank(role string) int {
	switch role {
	case "builder":
		return 0
	case "diverse":
		return 1
	case "base":
		return 2
	}
	return 3
}

// Marshal encodes the report canonically: lists in canonical order,
// indented, trailing newline, no HTML escaping.
func (r *Report) Marshal() ([]byte, error) {
	r.normalize()
	if r.APIVersion == "" {
		r.APIVersion = APIVersion
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// maxReportSize bounds a report read back from disk.
const maxReportSize = 64 << 20

// Parse decodes a report.json and checks its version; unknown fields are
// errors, so a report from a newer buildguard is not misread.
func Parse(data []byte) (*Report, error) {
	var r Report
	if err := strictjson.Decode(data, maxReportSize, &r); err != nil {
		return nil, fmt.Errorf("not a buildguard report: %w", err)
	}
	if r.APIVersion != APIVersion {
		return nil, fmt.Errorf("report apiVersion %q is not %q", r.APIVersion, APIVersion)
	}
	switch r.Decision {
	case Pass, Fail, Error:
	default:
		return nil, fmt.Errorf("report decision %q is not pass, fail or error", r.Decision)
	}
	return &r, nil
}

// Write writes the evidence directory: report.json, timings.json (when t is
// not nil), decision.md and report.html, each atomically.
func Write(dir string, r *Report, t *Timings) error {
	return write(dir, r, t, nil)
}

func write(dir string, r *Report, t *Timings, diffs map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating evidence directory: %w", err)
	}
	report, err := r.Marshal()
	if err != nil {
		return err
	}
	page, err := RenderHTML(r, t, diffs)
	if err != nil {
		return err
	}
	files := []struct {
		name string
		data []byte
	}{{"report.json", report}, {"decision.md", []byte(r.Markdown())}, {"report.html", page}}
	if t != nil {
		tj, err := json.MarshalIndent(t, "", "  ")
		if err != nil {
			return err
		}
		files = append(files, struct {
			name string
			data []byte
		}{"timings.json", append(tj, '\n')})
	}
	for _, f := range files {
		if err := atomicfile.Write(filepath.Join(dir, f.name), f.data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Markdown is the short summary for a CI step: the traffic-light line,
// then what failed and why.
func (r *Report) Markdown() string {
	var b strings.Builder
	switch r.Decision {
	case Pass:
		b.WriteString("🟢 **buildguard: pass**\n")
	case Fail:
		fmt.Fprintf(&b, "🔴 **buildguard: fail** — %d violation(s)\n", len(r.Violations))
	default:
		b.WriteString("🟠 **buildguard: error** — the guard could not complete; nothing was published\n")
	}
	if len(r.Violations) > 0 {
		b.WriteString("\n| rule | why |\n| --- | --- |\n")
		for _, v := range r.Violations {
			fmt.Fprintf(&b, "| %s | %s |\n", mdCell(v.Rule), mdCell(v.Message))
		}
	}
	for _, e := range r.Errors {
		fmt.Fprintf(&b, "\n- could not complete: %s", e)
	}
	if line := r.dependencyLine(); line != "" {
		fmt.Fprintf(&b, "\n- dependencies: %s", line)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "\n- note: %s", n)
	}
	if len(r.Errors)+len(r.Notes) > 0 || len(r.Dependencies) > 0 {
		b.WriteString("\n")
	}
	return b.String()
}

// dependencyLine summarises the dependencies for decision.md, e.g. "12
// fetched and checked against their lockfiles (10 gomod, 2 npm); 1 does
// not match". Empty when none was declared.
func (r *Report) dependencyLine() string {
	if len(r.Dependencies) == 0 {
		return ""
	}
	types := map[string]int{}
	var bad, unpinned, weak int
	for _, d := range r.Dependencies {
		types[d.Type]++
		switch {
		case d.Mismatch != nil:
			bad++
		case !d.Pinned:
			unpinned++
		case d.Weak:
			weak++
		}
	}
	names := make([]string, 0, len(types))
	for t := range types {
		names = append(names, t)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, t := range names {
		parts[i] = fmt.Sprintf("%d %s", types[t], t)
	}
	line := fmt.Sprintf("%d fetched and checked against their lockfiles (%s)", len(r.Dependencies), strings.Join(parts, ", "))
	for _, c := range []struct {
		n    int
		what string
	}{{bad, "do not match their lockfile"}, {unpinned, "have no hash in their lockfile"}, {weak, "are pinned by sha1 only (weak)"}} {
		if c.n > 0 {
			line += fmt.Sprintf("; %d %s", c.n, c.what)
		}
	}
	return line
}

func mdCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}
