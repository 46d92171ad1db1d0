package config

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/buildguard/buildguard/deps"
	"github.com/buildguard/buildguard/pin"
)

// Validate checks the configuration and returns every problem found, as
// Errors sorted by line (lines are known for a Config from Load or Parse), or
// nil. Parse calls it; call it again after changing a Config, such as after
// applying command-line flags. It does not fill in defaults: see SetDefaults.
func (c *Config) Validate() error {
	if c == nil {
		return Errors{{Msg: "no configuration"}}
	}
	col := &collector{file: c.file}
	c.validate(col, nil)
	return col.result()
}

// validator reports problems of one Config, except for fields already
// reported as malformed while decoding (bad).
type validator struct {
	c   *Config
	col *collector
	bad map[string]bool
}

func (v *validator) fail(field, format string, args ...any) {
	for p := field; p != ""; p = parentPath(p) {
		if v.bad[p] {
			return
		}
	}
	v.col.add(v.c.nearestLine(field), field, format, args...)
}

func (c *Config) validate(col *collector, bad map[string]bool) {
	v := &validator{c: c, col: col, bad: bad}
	switch c.APIVersion {
	case APIVersion:
	case "":
		v.fail("apiVersion", "required: start the file with \"apiVersion: %s\"", APIVersion)
	default:
		v.fail("apiVersion", "unsupported version %q: this buildguard reads %s", c.APIVersion, APIVersion)
	}
	v.path("source", c.Source)
	v.builder(&c.Builder)
	if e := c.SourceDateEpoch; e != "" && !isEpoch(e) {
		v.fail("sourceDateEpoch", "want empty or a non-negative integer (seconds since 1970-01-01 UTC), got %q", e)
	}
	v.dependencies(c.Dependencies)
	v.reproduce(&c.Reproduce)
	if c.Base != "" {
		v.image("base", c.Base)
	}
	if p := c.Publish.Image; p != "" && v.image("publish.image", p) && strings.Contains(p, "@") {
		v.fail("publish.image", "must not carry a digest: it is the destination of the output, give a tag such as registry.example/app:v1.2.3")
	}
	v.publish(c)
	v.trust(&c.Trust)
	v.path("signing.key", c.Signing.Key)
	v.path("signing.config", c.Signing.Config)
	v.policy(&c.Policy)
	v.limits(&c.Limits)
}

func isEpoch(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	_, err := strconv.ParseInt(s, 10, 64)
	return err == nil
}

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// reservedEnv are the variables buildguard sets itself in every build.
var reservedEnv = map[string]bool{"SOURCE_DATE_EPOCH": true, "HOME": true, "PATH": true}

func (v *validator) builder(b *Builder) {
	if b.Image == "" {
		v.fail("builder.image", "required: the builder image, pinned by digest (name:tag@sha256:...)")
	} else {
		v.image("builder.image", b.Image)
	}
	switch {
	case len(b.Command) == 0:
		v.fail("builder.command", "required: the build command as a list, such as [make, build]")
	case b.Command[0] == "":
		v.fail("builder.command[0]", "must not be empty: it is the program to run")
	}
	for i, a := range b.Command {
		v.noNUL(fmt.Sprintf("builder.command[%d]", i), a)
	}
	switch w := b.Workdir; {
	case !path.IsAbs(w):
		v.fail("builder.workdir", "want an absolute path in the container, such as %s, got %q", DefaultWorkdir, w)
	case path.Clean(w) != w:
		v.fail("builder.workdir", "want a clean path (no trailing /, no . or .. elements), such as %q, got %q", path.Clean(w), w)
	case w == "/":
		v.fail("builder.workdir", "must not be /: the source would hide the builder image")
	}
	keys := make([]string, 0, len(b.Env))
	for k := range b.Env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		field := joinPath("builder.env", k)
		switch {
		case !envNameRE.MatchString(k):
			v.fail(field, "invalid variable name %q: want letters, digits and _, not starting with a digit", k)
		case reservedEnv[k]:
			v.fail(field, "%s is set by buildguard and cannot be configured", k)
		default:
			if t := v.depOwning(k); t != "" {
				v.fail(field, "%s is set by buildguard for the %s dependencies it fetched (so that the build works offline); remove it from builder.env", k, t)
			}
		}
		v.noNUL(field, b.Env[k])
	}
	if b.Timeout <= 0 {
		v.fail("builder.timeout", "must be greater than 0, got %s", b.Timeout)
	}
	if !slices.Contains(Runtimes(), b.Runtime) {
		v.fail("builder.runtime", "unknown runtime %q: want one of %s", b.Runtime, joinNames(Runtimes()))
	}
	if b.Limits.Memory < 0 {
		v.fail("builder.limits.memory", "must not be negative (0: no limit)")
	}
	if b.Limits.Pids < 0 {
		v.fail("builder.limits.pids", "must not be negative (0: no limit)")
	}
	if b.Limits.Scratch < 0 {
		v.fail("builder.limits.scratch", "must not be negative (0: the default, 16Gi)")
	}
}

// depOwning returns the type of a declared dependency for which buildguard
// sets the variable k, or "".
func (v *validator) depOwning(k string) DependencyType {
	for _, d := range v.c.Dependencies {
		if slices.Contains(deps.OwnedEnv[string(d.Type)], k) {
			return d.Type
		}
	}
	return ""
}

var sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// dependencies checks each entry: the fields its type needs and no others,
// paths inside the source, a pinned digest for a file, an http(s) URL.
// That the lockfiles exist and parse is the prefetch stage's to say.
func (v *validator) dependencies(ds []Dependency) {
	for i, d := range ds {
		field := fmt.Sprintf("dependencies[%d]", i)
		only := func(allowed ...string) {
			for _, f := range []struct{ name, val string }{{"path", d.Path.Text}, {"url", d.URL}, {"sha256", d.SHA256}, {"dest", d.Dest}} {
				if f.val != "" && !slices.Contains(allowed, f.name) {
					v.fail(field+"."+f.name, "is not a field of a %s dependency (it takes %s)", d.Type, strings.Join(allowed, ", "))
				}
			}
		}
		switch d.Type {
		case DependencyGoMod, DependencyNPM:
			only("path")
			if d.Path.Text == "" {
				v.fail(field+".path", "required: the directory of the lockfile, relative to source (. for the source itself)")
			} else if filepath.IsAbs(d.Path.Text) || !filepath.IsLocal(filepath.Clean(d.Path.Text)) && filepath.Clean(d.Path.Text) != "." {
				v.fail(field+".path", "want a directory inside the source, relative to it, got %q", d.Path.Text)
			}
			v.path(field+".path", d.Path)
		case DependencyFile:
			only("url", "sha256", "dest")
			if u, err := url.Parse(d.URL); d.URL == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				v.fail(field+".url", "want an http(s) URL, got %q", d.URL)
			}
			if !sha256RE.MatchString(d.SHA256) {
				v.fail(field+".sha256", "want the file's sha256 as 64 lowercase hex digits (sha256sum prints it), got %q", d.SHA256)
			}
			if d.Dest == "" || path.IsAbs(d.Dest) || !filepath.IsLocal(d.Dest) || path.Clean(d.Dest) != d.Dest {
				v.fail(field+".dest", "want a clean path relative to builder.workdir, such as third_party/foo.tar.gz, got %q", d.Dest)
			}
			v.noNUL(field+".url", d.URL)
		case "":
			v.fail(field+".type", "required: one of %s", joinNames(DependencyTypes()))
		default:
			v.fail(field+".type", "unknown dependency type %q: want one of %s", d.Type, joinNames(DependencyTypes()))
		}
	}
}

func (v *validator) reproduce(r *Reproduce) {
	if r.Runs < 1 {
		v.fail("reproduce.runs", "must be at least 1 (run 1 is the control), got %d", r.Runs)
	}
	known := Variations()
	names := make([]string, len(known))
	for i, k := range known {
		names[i] = string(k)
	}
	seen := map[Variation]int{}
	for i, x := range r.Variations {
		field := fmt.Sprintf("reproduce.variations[%d]", i)
		if !slices.Contains(known, x) {
			msg := fmt.Sprintf("unknown variation %q: want one of %s", x, joinNames(known))
			if s := suggest(string(x), names); s != "" {
				msg = fmt.Sprintf("unknown variation %q; did you mean %q?", x, s)
			}
			v.fail(field, "%s", msg)
			continue
		}
		if j, dup := seen[x]; dup {
			v.fail(field, "duplicate variation %q (also reproduce.variations[%d])", x, j)
			continue
		}
		seen[x] = i
	}
	for i, d := range r.Diverse {
		field := fmt.Sprintf("reproduce.diverse[%d].image", i)
		switch {
		case d.Image == "":
			v.fail(field, "required: an independent builder image, pinned by digest")
		case v.image(field, d.Image) && d.Image == v.c.Builder.Image:
			v.fail(field, "is builder.image: a diverse builder must be an independent image")
		}
	}
}

func (v *validator) trust(t *Trust) {
	v.path("trust.trustedRoot", t.TrustedRoot)
	for i, k := range t.Keys {
		field := fmt.Sprintf("trust.keys[%d]", i)
		if k.Text == "" && k.Resolved == "" {
			v.fail(field, "must not be empty: a public key file")
		}
		v.path(field, k)
	}
	v.path("trust.checkpoints", t.Checkpoints)
	for i, id := range t.Identities {
		field := fmt.Sprintf("trust.identities[%d]", i)
		if id.Issuer == "" && id.IssuerRegExp == "" {
			v.fail(field, "needs an issuer or issuerRegExp")
		}
		if id.Subject == "" && id.SubjectRegExp == "" {
			v.fail(field, "needs a subject or subjectRegExp")
		}
		v.regexp(field+".issuerRegExp", id.IssuerRegExp)
		v.regexp(field+".subjectRegExp", id.SubjectRegExp)
	}
	if u := t.Rekor.URL; u != "" {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
			v.fail("trust.rekor.url", "want empty (offline) or an http(s) URL such as https://rekor.example, got %q", u)
		} else if t.InsecureIgnoreTlog {
			v.fail("trust.insecureIgnoreTlog", "conflicts with trust.rekor.url: the log cannot be both ignored and consulted")
		}
	}
}

func (v *validator) policy(p *Policy) {
	v.nonEmpty("policy.builderIDs", p.BuilderIDs)
	v.nonEmpty("policy.sourceURIs", p.SourceURIs)
	v.nonEmpty("policy.waive", p.Waive)
	waived := map[string]int{}
	for i, w := range p.Waive {
		if j, dup := waived[w]; dup && w != "" {
			v.fail(fmt.Sprintf("policy.waive[%d]", i), "duplicate %q (also policy.waive[%d])", w, j)
		} else if !dup {
			waived[w] = i
		}
	}
	names := map[string]int{}
	for i, r := range p.Rules {
		field := fmt.Sprintf("policy.rules[%d]", i)
		if r.Name == "" {
			v.fail(field+".name", "required: a name for the rule, shown in violations")
		} else if j, dup := names[r.Name]; dup {
			v.fail(field+".name", "duplicate rule name %q (also policy.rules[%d])", r.Name, j)
		} else {
			names[r.Name] = i
		}
		if strings.TrimSpace(r.Expr) == "" {
			v.fail(field+".expr", "required: a CEL expression that must be true to pass")
		}
	}
}

// image checks that ref is a syntactically valid image reference and reports
// whether it is. A missing digest is not a problem here: the pin check makes
// that a fail decision later.
func (v *validator) image(field, ref string) bool {
	if _, err := pin.ParseRef(ref); err != nil {
		var re *pin.RefError
		if errors.As(err, &re) {
			err = re.Err
		}
		v.fail(field, "not a valid image reference: %v", err)
		return false
	}
	return true
}

func (v *validator) path(field string, p Path) {
	v.noNUL(field, p.Text)
}

func (v *validator) noNUL(field, s string) {
	if strings.ContainsRune(s, 0) {
		v.fail(field, "must not contain a NUL byte")
	}
}

func (v *validator) regexp(field, expr string) {
	if expr == "" {
		return
	}
	if _, err := regexp.Compile(expr); err != nil {
		v.fail(field, "invalid regular expression: %v", err)
	}
}

func (v *validator) nonEmpty(field string, list []string) {
	for i, s := range list {
		if s == "" {
			v.fail(fmt.Sprintf("%s[%d]", field, i), "must not be empty")
		}
	}
}

func joinNames[T ~string](xs []T) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = string(x)
	}
	return strings.Join(s, ", ")
}

// userRE is an image config's user: a name or uid, optionally ":" and a
// group name or gid (as the OCI image spec and Docker accept it).
var userRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?$`)

// labelKeyRE is a label's key: printable, no space (reverse-DNS by
// convention, not by rule).
var labelKeyRE = regexp.MustCompile(`^[\x21-\x7e]+$`)

// maxImageConfigEntries bounds each list and map of the image config.
const maxImageConfigEntries = 1024

// publish checks the image config fields of publish.
func (v *validator) publish(c *Config) {
	p := &c.Publish
	if !p.SetsImageConfig() {
		return
	}
	first := publishFirstSet(p)
	switch {
	case p.Image == "":
		v.fail(first, "is set but publish.image is not: nothing is published to carry it")
	case c.Base == "":
		v.fail(first, "needs base: without a base the output is pushed as an OCI artifact, which no container engine runs; set base to the image the program runs on")
	}
	for _, l := range []struct {
		field string
		list  []string
	}{{"publish.entrypoint", p.Entrypoint}, {"publish.cmd", p.Cmd}} {
		if len(l.list) > maxImageConfigEntries {
			v.fail(l.field, "more than %d entries", maxImageConfigEntries)
		}
		for i, a := range l.list {
			v.noNUL(fmt.Sprintf("%s[%d]", l.field, i), a)
		}
	}
	if len(p.Entrypoint) > 0 && p.Entrypoint[0] == "" {
		v.fail("publish.entrypoint[0]", "must not be empty: it is the program to run")
	}
	if len(p.Entrypoint) == 0 && len(p.Cmd) > 0 && p.Cmd[0] == "" {
		v.fail("publish.cmd[0]", "must not be empty: without an entrypoint it is the program to run")
	}
	for _, k := range sortedKeys(p.Env) {
		field := joinPath("publish.env", k)
		if !envNameRE.MatchString(k) {
			v.fail(field, "invalid variable name %q: want letters, digits and _, not starting with a digit", k)
		}
		v.noNUL(field, p.Env[k])
	}
	if len(p.Env) > maxImageConfigEntries {
		v.fail("publish.env", "more than %d variables", maxImageConfigEntries)
	}
	switch w := p.Workdir; {
	case w == "":
	case !path.IsAbs(w):
		v.fail("publish.workdir", "want an absolute path in the image, such as /app, got %q", w)
	case path.Clean(w) != w:
		v.fail("publish.workdir", "want a clean path (no trailing /, no . or .. elements), such as %q, got %q", path.Clean(w), w)
	}
	if u := p.User; u != "" && !userRE.MatchString(u) {
		v.fail("publish.user", "want a user name or uid, optionally :group or :gid (such as 65532 or nonroot:nonroot), got %q", u)
	}
	for _, k := range sortedKeys(p.Labels) {
		field := joinPath("publish.labels", k)
		if !labelKeyRE.MatchString(k) {
			v.fail(field, "invalid label key %q: want printable characters without spaces, such as org.example.team", k)
		}
		v.noNUL(field, p.Labels[k])
	}
	if len(p.Labels) > maxImageConfigEntries {
		v.fail("publish.labels", "more than %d labels", maxImageConfigEntries)
	}
}

// publishFirstSet names the first image config field of publish that is
// set.
func publishFirstSet(p *Publish) string {
	switch {
	case len(p.Entrypoint) > 0:
		return "publish.entrypoint"
	case len(p.Cmd) > 0:
		return "publish.cmd"
	case len(p.Env) > 0:
		return "publish.env"
	case p.Workdir != "":
		return "publish.workdir"
	case p.User != "":
		return "publish.user"
	}
	return "publish.labels"
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
