package guard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/buildguard/buildguard/attest"
	"github.com/buildguard/buildguard/builder"
	"github.com/buildguard/buildguard/evidence"
	"github.com/buildguard/buildguard/internal/atomicfile"
)

// The stages after the decision.
const (
	StageAttest  = "attest"
	StagePublish = "publish"
)

// statements holds the encoded statements and, when signed, their bundles.
type statements struct {
	// prov is the provenance statement before encoding, build what it
	// was made of; passed and policyDigest are the VSA's. The statements
	// about the pushed image are made of them after the push.
	prov                        *attest.Statement
	build                       *attest.Build
	passed                      bool
	policyDigest                map[string]string
	provenance, vsa             []byte
	provenanceBundle, vsaBundle []byte
}

// finish runs the stages after the decision: the statements (always,
// whatever the decision), then the publish (on pass only). err is the
// pipeline's; the result is the error the build returns.
func (g *run) finish(ctx context.Context, err error) error {
	if aerr := g.stage(StageAttest, func() error { return g.attest(ctx) }); aerr != nil {
		g.fail(aerr)
		if err == nil {
			err = aerr
		}
	}
	if err != nil || !g.shouldPublish() {
		return err
	}
	if perr := g.stage(StagePublish, func() error { return g.publish(ctx) }); perr != nil {
		g.fail(perr)
		return perr
	}
	return nil
}

// fail records an error that kept the guard from completing: the decision
// becomes error.
func (g *run) fail(err error) {
	g.report.Decision = evidence.Error
	g.report.Errors = append(g.report.Errors, err.Error())
}

// attest writes provenance.json and vsa.json into the evidence directory
// and, with a signer, their Sigstore bundles beside them.
func (g *run) attest(ctx context.Context) error {
	b := g.attestBuild(ctx)
	prov, err := attest.Provenance(b)
	if err != nil {
		g.report.Notes = append(g.report.Notes, "no attestations: "+err.Error())
		return nil
	}
	st := &statements{}
	if st.provenance, err = attest.Marshal(prov); err != nil {
		return err
	}
	policyJSON, err := json.Marshal(g.cfg.Policy)
	if err != nil {
		return fmt.Errorf("encoding the policy: %w", err)
	}
	d := attest.Decision{Passed: g.report.Decision == evidence.Pass, PolicyDigest: attest.SHA256(policyJSON), Provenance: st.provenance}
	if g.cfg.Publish.Image != "" {
		d.ResourceURI = "oci://" + g.cfg.Publish.Image
	}
	vsa, err := attest.VSA(b, d)
	if err != nil {
		return err
	}
	if st.vsa, err = attest.Marshal(vsa); err != nil {
		return err
	}
	files := map[string][]byte{attest.ProvenanceFile: st.provenance, attest.VSAFile: st.vsa}
	if s := g.opts.Signer; s != nil {
		bundles, err := attest.SignAll(ctx, s, st.provenance, st.vsa)
		if se := (*attest.SignAllError)(nil); errors.As(err, &se) {
			return fmt.Errorf("%s: %w", []string{attest.ProvenanceFile, attest.VSAFile}[se.Index], se.Err)
		}
		st.provenanceBundle, st.vsaBundle = bundles[0], bundles[1]
		files[attest.ProvenanceBundleFile], files[attest.VSABundleFile] = st.provenanceBundle, st.vsaBundle
	}
	if err := os.MkdirAll(g.opts.Out, 0o755); err != nil {
		return fmt.Errorf("creating evidence directory: %w", err)
	}
	for _, name := range []string{attest.ProvenanceFile, attest.VSAFile, attest.ProvenanceBundleFile, attest.VSABundleFile} {
		if data, ok := files[name]; ok {
			if err := atomicfile.Write(filepath.Join(g.opts.Out, name), data, 0o644); err != nil {
				return fmt.Errorf("writing %s: %w", name, err)
			}
		}
	}
	st.prov, st.build, st.passed, st.policyDigest = prov, b, d.Passed, d.PolicyDigest
	g.statements = st
	return nil
}

// attestBuild gathers what the statements say from the report and the
// control run. The source is hashed here when the pipeline stopped before
// the build did, so that a refused build still has its statements.
func (g *run) attestBuild(ctx context.Context) *attest.Build {
	r, cfg := g.report, g.cfg
	b := &attest.Build{
		Source: cfg.Source.Text, SourceDateEpoch: r.Source.SourceDateEpoch, SourceDigest: r.Source.Digest,
		Command: cfg.Builder.Command, Workdir: cfg.Builder.Workdir, Env: cfg.Builder.Env,
	}
	if cfg.Publish.Image != "" {
		p := cfg.Publish
		b.Publish = &p
	}
	if g.source != nil || b.SourceDigest == "" {
		t, err := g.readSource(ctx)
		if err == nil {
			b.SourceDigest = t.Manifest.Digest()
		}
		if err == nil && t.Git != nil {
			b.Git = &attest.GitSource{URI: t.Git.URI, Commit: t.Git.Commit}
		}
	}
	b.Dependencies = append(goVendorDependencies(cfg.Source.Resolved), dependencyDescriptors(r.Dependencies)...)
	for _, im := range r.Images {
		b.Images = append(b.Images, attest.Image{Role: im.Role, Ref: im.Ref, Digest: im.Digest})
	}
	for _, run := range r.Runs {
		b.Runs = append(b.Runs, attest.Run{Index: run.Index, Builder: run.Builder, Diverse: run.Diverse, Variations: run.Variations, OutputDigest: run.OutputDigest, ExitCode: run.ExitCode, Sandbox: sandboxOf(run)})
	}
	for _, m := range r.Mismatches {
		b.Mismatches = append(b.Mismatches, attest.Mismatch{RunA: m.RunA, RunB: m.RunB, Kind: m.Kind, Variation: m.Variation})
	}
	if m := g.controlManifest(); m != nil {
		b.OutputDigest = m.Digest()
		for _, e := range m.Entries {
			if e.Type == builder.TypeFile {
				b.Files = append(b.Files, attest.File{Path: e.Path, SHA256: e.SHA256})
			}
		}
		b.Reproducible = g.succeeded() && len(r.Mismatches) == 0
	}
	return b
}

// controlManifest is the control run's output manifest, or nil.
func (g *run) controlManifest() *builder.Manifest {
	if g.outcome == nil || len(g.outcome.Runs) == 0 || g.outcome.Runs[0].Result == nil {
		return nil
	}
	return g.outcome.Runs[0].Result.Output
}

// goVendorDependencies lists the vendored Go modules of the source for the
// provenance: nothing when the source has no vendor/modules.txt or it or
// go.sum cannot be read within attest.MaxGoVendorFile. Both are read
// inside the source, never through a link out of it.
func goVendorDependencies(source string) []attest.ResourceDescriptor {
	root, err := os.OpenRoot(source)
	if err != nil {
		return nil
	}
	defer root.Close()
	read := func(name string) []byte {
		f, err := root.Open(name)
		if err != nil {
			return nil
		}
		defer f.Close()
		data, err := io.ReadAll(io.LimitReader(f, attest.MaxGoVendorFile+1))
		if err != nil || len(data) > attest.MaxGoVendorFile {
			return nil
		}
		return data
	}
	modules := read(attest.GoModulesTxt)
	if modules == nil {
		return nil
	}
	return attest.GoVendorDependencies(modules, read("go.sum"))
}

// sandboxOf is run's sandbox record for the provenance; an untyped nil
// when the run never started.
func sandboxOf(run evidence.Run) any {
	if run.Sandbox == nil {
		return nil
	}
	return run.Sandbox
}
