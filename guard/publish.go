package guard

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"os"
	"path/filepath"

	"github.com/buildguard/buildguard/attest"
	"github.com/buildguard/buildguard/config"
	"github.com/buildguard/buildguard/evidence"
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

// attachments are the SBOMs, the statements and their bundles, in a fixed
// order.
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
	st := g.statements
	if st == nil {
		return out, nil
	}
	for _, s := range []struct {
		name, predicate string
		data, bundle    []byte
		bundleName      string
	}{
		{attest.ProvenanceFile, attest.ProvenancePredicateType, st.provenance, st.provenanceBundle, attest.ProvenanceBundleFile},
		{attest.VSAFile, attest.VSAPredicateType, st.vsa, st.vsaBundle, attest.VSABundleFile},
	} {
		out = append(out, publish.Attachment{Name: s.name, ArtifactType: attest.PayloadType, MediaType: attest.PayloadType, Data: s.data,
			Annotations: map[string]string{annPredicateType: s.predicate}})
		if s.bundle != nil {
			out = append(out, publish.Attachment{Name: s.bundleName, ArtifactType: trust.BundleMediaType, MediaType: trust.BundleMediaType, Data: s.bundle,
				Annotations: map[string]string{annBundlePredicateType: s.predicate, annBundleContent: "dsse-envelope"}})
		}
	}
	return out, nil
}

// aboutImage signs the provenance again with the pushed image as its only
// subject, so that verifiers that look an attestation up by the image's
// digest (cosign verify-attestation, buildguard verify) find one about it.
// Without a signer there is nothing to add.
func (g *run) aboutImage(ctx context.Context, subject v1.Descriptor) ([]publish.Attachment, error) {
	if g.opts.Signer == nil || g.statements == nil || g.statements.prov == nil {
		return nil, nil
	}
	ref, err := name.NewTag(g.cfg.Publish.Image)
	if err != nil {
		return nil, fmt.Errorf("publish.image %q: %w", g.cfg.Publish.Image, err)
	}
	st, err := attest.Marshal(attest.About(g.statements.prov, ref.Context().Name(), subject.Digest.String()))
	if err != nil {
		return nil, err
	}
	b, err := attest.Sign(ctx, g.opts.Signer, st)
	if err != nil {
		return nil, fmt.Errorf("signing the image provenance: %w", err)
	}
	return []publish.Attachment{{Name: ImageProvenanceBundleFile, ArtifactType: trust.BundleMediaType, MediaType: trust.BundleMediaType, Data: b,
		Annotations: map[string]string{annBundlePredicateType: attest.ProvenancePredicateType, annBundleContent: "dsse-envelope"}}}, nil
}

// ImageProvenanceBundleFile names the signed provenance about the pushed
// image among its referrers.
const ImageProvenanceBundleFile = "image.provenance.sigstore.json"

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
