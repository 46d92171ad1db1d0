package guard

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"os"
	"path/filepath"

	"github.com/buildguard/buildguard/attest"
	"github.com/buildguard/buildguard/config"
	"github.com/buildguard/buildguard/evidence"
	"github.com/buildguard/buildguard/internal/atomicfile"
	"github.com/buildguard/buildguard/publish"
	"github.com/buildguard/buildguard/trust"
)

// Annotations of the attached Sigstore bundles, as cosign writes them.
const (
	annBundlePredicateType = "dev.sigstore.bundle.predicateType"
	annBundleContent       = "dev.sigstore.bundle.content"
	annPredicateType       = "in-toto.io/predicate-type"
)

// sbomMediaTypes are the SBOM files' media types.
var sbomMediaTypes = map[string]string{
	"sbom.spdx.json": "application/spdx+json",
	"sbom.cdx.json":  "application/vnd.cyclonedx+json",
}

// shouldPublish reports whether the output is pushed: only on pass, only
// with publish.image, never with NoPublish. Anything else pushes nothing.
func (g *run) shouldPublish() bool {
	if g.report.Decision != evidence.Pass || g.cfg.Publish.Image == "" {
		return false
	}
	if g.opts.AttestOnly {
		g.report.Notes = append(g.report.Notes, fmt.Sprintf("publish.image %s: not pushed (--attest-only)", g.cfg.Publish.Image))
		return false
	}
	if g.opts.NoPublish {
		g.report.Notes = append(g.report.Notes, fmt.Sprintf("publish.image %s: not pushed (--no-publish)", g.cfg.Publish.Image))
		return false
	}
	return true
}

// publish pushes the control run's output, on the base when one is
// configured, and attaches the evidence as referrers.
func (g *run) publish(ctx context.Context) error {
	m := g.controlManifest()
	if m == nil || g.output == "" {
		return fmt.Errorf("publishing %s: no output", g.cfg.Publish.Image)
	}
	atts, err := g.attachments()
	if err != nil {
		return err
	}
	res, err := publish.Publish(ctx, publish.Options{
		Image: g.cfg.Publish.Image, Base: g.cfg.Base, Dir: g.output, Manifest: m,
		SourceDateEpoch: g.report.Source.SourceDateEpoch, Attachments: atts, Remote: g.opts.Remote,
		About:  func(d v1.Descriptor) ([]publish.Attachment, error) { return g.aboutImage(ctx, d) },
		Config: ImageConfig(g.cfg.Publish), Annotations: g.sourceAnnotations(),
	})
	if err != nil {
		return fmt.Errorf("publishing %s: %w", g.cfg.Publish.Image, err)
	}
	g.report.Published = &evidence.Published{Image: res.Image, Digest: res.Digest}
	return nil
}

// attachments are the SBOMs, in a fixed order. The statements about the
// output's files (provenance.json, vsa.json and their bundles) stay in the
// evidence directory and are not attached: a referrer of an image is read
// as a claim about that image, and a signed statement whose subject is
// another digest cannot be told, by any verifier (buildguard verify,
// cosign, an admission controller), from one copied from another
// artifact. Attached, they were refused as "digest-mismatch" beside every
// good signature, the very reason that catches a copied statement.
// aboutImage attaches the same statements about the pushed image instead.
func (g *run) attachments() ([]publish.Attachment, error) {
	var out []publish.Attachment
	if g.report.SBOM != nil {
		for _, f := range g.report.SBOM.Files {
			mt, ok := sbomMediaTypes[f]
			if !ok {
				continue
			}
			data, err := os.ReadFile(filepath.Join(g.opts.Out, f)) // #nosec G304 -- inside the evidence directory
			if err != nil {
				return nil, fmt.Errorf("attaching %s: %w", f, err)
			}
			out = append(out, publish.Attachment{Name: f, ArtifactType: mt, MediaType: mt, Data: data})
		}
	}
	return out, nil
}

// aboutImage makes the statements about the pushed image, writes them
// into the evidence directory and returns them to attach, in a fixed
// order: the provenance and the VSA with the image as their only subject
// (image.provenance.json, image.vsa.json: byte-stable, as the pushed
// digest is) and, with a signer, the image's signature as `cosign sign`
// (v3) makes it (image.sigstore.json) and the two statements' bundles.
// Verifiers that look statements up by the image's digest (buildguard
// verify, cosign verify and verify-attestation) find them.
func (g *run) aboutImage(ctx context.Context, subject v1.Descriptor) ([]publish.Attachment, error) {
	st := g.statements
	if st == nil || st.prov == nil {
		return nil, nil
	}
	ref, err := name.NewTag(g.cfg.Publish.Image)
	if err != nil {
		return nil, fmt.Errorf("publish.image %q: %w", g.cfg.Publish.Image, err)
	}
	repo, digest := ref.Context().Name(), subject.Digest.String()
	prov, err := attest.Marshal(attest.About(st.prov, repo, digest))
	if err != nil {
		return nil, err
	}
	vsa, err := attest.Marshal(attest.ImageVSA(st.build, attest.Decision{
		Passed: st.passed, PolicyDigest: st.policyDigest, Provenance: prov, ProvenanceName: attest.ImageProvenanceFile,
	}, repo, digest))
	if err != nil {
		return nil, err
	}
	out := []publish.Attachment{
		statementAttachment(attest.ImageProvenanceFile, attest.ProvenancePredicateType, prov),
		statementAttachment(attest.ImageVSAFile, attest.VSAPredicateType, vsa),
	}
	if s := g.opts.Signer; s != nil {
		sig, err := attest.Marshal(attest.ImageSignature(repo, digest))
		if err != nil {
			return nil, err
		}
		signed := []struct{ file, predicate string }{
			{attest.ImageSignatureBundleFile, attest.CosignSignPredicateType},
			{attest.ImageProvenanceBundleFile, attest.ProvenancePredicateType},
			{attest.ImageVSABundleFile, attest.VSAPredicateType},
		}
		bundles, err := attest.SignAll(ctx, s, sig, prov, vsa)
		if se := (*attest.SignAllError)(nil); errors.As(err, &se) {
			return nil, fmt.Errorf("signing %s: %w", signed[se.Index].file, se.Err)
		}
		for i, x := range signed {
			out = append(out, bundleAttachment(x.file, x.predicate, bundles[i]))
		}
	}
	for _, a := range out {
		if err := atomicfile.Write(filepath.Join(g.opts.Out, a.Name), a.Data, 0o644); err != nil {
			return nil, fmt.Errorf("writing %s: %w", a.Name, err)
		}
	}
	return out, nil
}

// statementAttachment is an in-toto statement attached as it is.
func statementAttachment(file, predicate string, data []byte) publish.Attachment {
	return publish.Attachment{Name: file, ArtifactType: attest.PayloadType, MediaType: attest.PayloadType, Data: data,
		Annotations: map[string]string{annPredicateType: predicate}}
}

// bundleAttachment is a Sigstore bundle of a statement, attached with the
// annotations cosign v3 writes.
func bundleAttachment(file, predicate string, data []byte) publish.Attachment {
	return publish.Attachment{Name: file, ArtifactType: trust.BundleMediaType, MediaType: trust.BundleMediaType, Data: data,
		Annotations: map[string]string{annBundlePredicateType: predicate, annBundleContent: "dsse-envelope"}}
}

// ImageConfig is the image config publish sets over the base's, from
// buildguard.yaml's publish section.
func ImageConfig(p config.Publish) publish.ImageConfig {
	return publish.ImageConfig{Entrypoint: p.Entrypoint, Cmd: p.Cmd, Env: p.Env, WorkingDir: p.Workdir, User: p.User, Labels: p.Labels}
}

// sourceAnnotations name the source of a git checkout on the published
// manifest: its repository URL (when it has a network origin) and commit.
func (g *run) sourceAnnotations() map[string]string {
	if g.source == nil || g.source.Git == nil {
		return nil
	}
	ann := map[string]string{publish.AnnotationRevision: g.source.Git.Commit}
	if u := g.source.Git.URL; u != "" {
		ann[publish.AnnotationSource] = u
	}
	return ann
}
