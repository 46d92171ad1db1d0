// Package publish pushes a guarded build's output to a registry: an OCI
// image with the output as one reproducible layer on the pinned base, or,
// without a base, an OCI artifact of the output, and then the evidence
// (SBOMs, provenance, VSA, their bundles) as OCI referrers of it. With the
// same inputs and SOURCE_DATE_EPOCH the pushed digest is the same.
//
// Referrers go through the registry's referrers API, or, where the
// registry has none (distribution 2.8), through the "sha256-<hex>" tag
// fallback, as go-containerregistry's remote.Put does.
package publish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/buildguard/buildguard/builder"
)

// The media types buildguard mints for what it publishes; docs/formats.md
// lists them.
const (
	// OutputArtifactType is the artifactType of an output published
	// without a base: one tar+gzip layer of the output tree.
	OutputArtifactType = "application/vnd.buildguard.output.v1"
	// AnnotationTitle names a blob (the OCI image spec's title).
	AnnotationTitle = "org.opencontainers.image.title"
	// AnnotationCreated is the manifests' creation time: SOURCE_DATE_EPOCH.
	AnnotationCreated = "org.opencontainers.image.created"
	// CreatedBy is the history entry of the output layer on a base.
	CreatedBy = "buildguard build"
	// AnnotationSource and AnnotationRevision are the source's repository
	// URL and commit; AnnotationBaseName and AnnotationBaseDigest the base
	// the output was layered on (the OCI image spec's pre-defined keys).
	AnnotationSource     = "org.opencontainers.image.source"
	AnnotationRevision   = "org.opencontainers.image.revision"
	AnnotationBaseName   = "org.opencontainers.image.base.name"
	AnnotationBaseDigest = "org.opencontainers.image.base.digest"
)

// ImageConfig is what a published image runs with, set over its base's
// config (buildguard.yaml's publish section). An unset field keeps the
// base's value.
type ImageConfig struct {
	// Entrypoint and Cmd replace the base's; an Entrypoint without Cmd
	// clears the base's Cmd, as a Dockerfile's ENTRYPOINT does.
	Entrypoint, Cmd []string
	// Env is set over the base's environment: a variable the base sets is
	// replaced where it stands, the others follow in name order.
	Env map[string]string
	// WorkingDir and User replace the base's.
	WorkingDir, User string
	// Labels are set over the base's.
	Labels map[string]string
}

// apply sets c over cfg.
func (c *ImageConfig) apply(cfg *v1.Config) {
	if len(c.Entrypoint) > 0 {
		cfg.Entrypoint = append([]string(nil), c.Entrypoint...)
		cfg.Cmd = nil
	}
	if len(c.Cmd) > 0 {
		cfg.Cmd = append([]string(nil), c.Cmd...)
	}
	if len(c.Env) > 0 {
		env := append([]string(nil), cfg.Env...)
		done := map[string]bool{}
		for i, kv := range env {
			k, _, _ := strings.Cut(kv, "=")
			if v, ok := c.Env[k]; ok {
				env[i], done[k] = k+"="+v, true
			}
		}
		for _, k := range slices.Sorted(maps.Keys(c.Env)) {
			if !done[k] {
				env = append(env, k+"="+c.Env[k])
			}
		}
		cfg.Env = env
	}
	if c.WorkingDir != "" {
		cfg.WorkingDir = c.WorkingDir
	}
	if c.User != "" {
		cfg.User = c.User
	}
	if len(c.Labels) > 0 {
		labels := maps.Clone(cfg.Labels)
		if labels == nil {
			labels = map[string]string{}
		}
		maps.Copy(labels, c.Labels)
		cfg.Labels = labels
	}
}

// Attachment is a document attached to the published output as a referrer:
// an OCI artifact manifest with one blob.
type Attachment struct {
	// Name is the blob's title, e.g. "provenance.json".
	Name string
	// ArtifactType is the manifest's artifactType, e.g. an in-toto
	// predicate's media type.
	ArtifactType string
	// MediaType is the blob's media type.
	MediaType string
	Data      []byte
	// Annotations go into the manifest, and so into the referrers list.
	Annotations map[string]string
}

// Options say what to publish where.
type Options struct {
	// Image is the destination, a tag (never a digest).
	Image string
	// Base, when set, is the pinned image (name@sha256:...) the output is
	// layered on, for the platform linux and this machine's architecture
	// when it is an index.
	Base string
	// Dir is the output tree and Manifest its manifest.
	Dir      string
	Manifest *builder.Manifest
	// SourceDateEpoch sets every time in the layer and the config, and the
	// manifest's org.opencontainers.image.created.
	SourceDateEpoch int64
	// Config is set over the base's image config; it needs a Base.
	Config ImageConfig
	// Annotations are added to the output's manifest, e.g.
	// AnnotationSource and AnnotationRevision.
	Annotations map[string]string
	Attachments []Attachment
	// About, when set, is called with the pushed output's descriptor and
	// returns more attachments, e.g. statements whose subject is the image.
	About func(subject v1.Descriptor) ([]Attachment, error)
	// Remote are registry options (authentication, transport).
	Remote []remote.Option
}

// Result is what was pushed.
type Result struct {
	// Image is the destination as given; Digest the manifest's digest.
	Image  string
	Digest string
	// Referrers are the attachments' manifest digests, in order.
	Referrers []string

	subject v1.Descriptor
}

// Publish pushes the output and its attachments.
func Publish(ctx context.Context, o Options) (*Result, error) {
	return publish(ctx, o, true)
}

// Subject returns the descriptor of the output as Publish would push it
// (the image on the base, or the artifact), pushing nothing: the same
// inputs give the same digest, which is how buildguard rebuild compares a
// rebuilt output with a published one. Only the base is read.
func Subject(ctx context.Context, o Options) (v1.Descriptor, error) {
	o.Attachments, o.About = nil, nil
	res, err := publish(ctx, o, false)
	if err != nil {
		return v1.Descriptor{}, err
	}
	return res.subject, nil
}

// publish makes the output's manifest and, when doPush is set, pushes it
// and its attachments.
func publish(ctx context.Context, o Options, doPush bool) (*Result, error) {
	if o.Manifest == nil || o.Dir == "" {
		return nil, errors.New("publishing: no output")
	}
	tag, err := name.NewTag(o.Image, name.StrictValidation)
	if err != nil {
		return nil, fmt.Errorf("publish.image %q: want a tag: %w", o.Image, err)
	}
	ropts := append([]remote.Option{remote.WithContext(ctx)}, o.Remote...)
	created := time.Unix(o.SourceDateEpoch, 0).UTC()
	var subject v1.Descriptor
	if o.Base == "" && !reflect.DeepEqual(o.Config, ImageConfig{}) {
		return nil, errors.New("publishing: an image config needs a base (without one the output is an OCI artifact)")
	}
	// The output is made, then About (which may sign, and fail), and only
	// then is anything pushed: a failure before the push leaves the
	// registry as it was.
	var push func() error
	if o.Base != "" {
		img, err := onBase(o, created, ropts)
		if err != nil {
			return nil, err
		}
		if subject, err = partialDescriptor(img); err != nil {
			return nil, err
		}
		push = func() error {
			if err := remote.Write(tag, img, ropts...); err != nil {
				return fmt.Errorf("pushing %s: %w", tag, err)
			}
			return nil
		}
	} else {
		layer, err := Layer(o.Dir, o.Manifest, "", o.SourceDateEpoch, types.OCILayer)
		if err != nil {
			return nil, err
		}
		art, err := makeArtifact(Attachment{Name: "output.tar.gz", ArtifactType: OutputArtifactType, Annotations: o.Annotations}, layer, nil, created)
		if err != nil {
			return nil, err
		}
		subject = art.desc
		push = func() error { return art.put(tag.Context(), &tag, ropts) }
	}
	subject.ArtifactType = ""
	if !doPush {
		return &Result{Image: o.Image, Digest: subject.Digest.String(), subject: subject}, nil
	}
	atts := o.Attachments
	if o.About != nil {
		more, err := o.About(subject)
		if err != nil {
			return nil, err
		}
		atts = append(append([]Attachment(nil), atts...), more...)
	}
	if err := push(); err != nil {
		return nil, err
	}
	res := &Result{Image: o.Image, Digest: subject.Digest.String()}
	for _, a := range atts {
		d, err := putArtifact(tag.Context(), nil, a, static.NewLayer(a.Data, types.MediaType(a.MediaType)), &subject, created, ropts)
		if err != nil {
			return res, fmt.Errorf("attaching %s: %w", a.Name, err)
		}
		res.Referrers = append(res.Referrers, d.Digest.String())
	}
	return res, nil
}

// onBase layers the output on the pinned base.
func onBase(o Options, created time.Time, ropts []remote.Option) (v1.Image, error) {
	ref, err := name.NewDigest(o.Base, name.StrictValidation)
	if err != nil {
		return nil, fmt.Errorf("base %q: want a pinned name@sha256:... reference: %w", o.Base, err)
	}
	base, err := remote.Image(ref, append(ropts, remote.WithPlatform(v1.Platform{OS: "linux", Architecture: runtime.GOARCH}))...)
	if err != nil {
		return nil, fmt.Errorf("fetching base %s: %w", o.Base, err)
	}
	mt, err := base.MediaType()
	if err != nil {
		return nil, fmt.Errorf("base %s: %w", o.Base, err)
	}
	layerType := types.DockerLayer
	if mt == types.OCIManifestSchema1 {
		layerType = types.OCILayer
	}
	layer, err := Layer(o.Dir, o.Manifest, "", o.SourceDateEpoch, layerType)
	if err != nil {
		return nil, err
	}
	img, err := mutate.Append(withoutAnnotations{base}, mutate.Addendum{Layer: layer, History: v1.History{Created: v1.Time{Time: created}, CreatedBy: CreatedBy}})
	if err != nil {
		return nil, fmt.Errorf("layering the output on %s: %w", o.Base, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading the config of %s: %w", o.Base, err)
	}
	ann := map[string]string{AnnotationCreated: created.Format(time.RFC3339), AnnotationBaseName: ref.Context().Name(), AnnotationBaseDigest: ref.DigestStr()}
	maps.Copy(ann, o.Annotations)
	cfg := cf.Config.DeepCopy()
	oci := mt == types.OCIManifestSchema1
	if !oci {
		// A Docker manifest has no annotations: the same keys go into the
		// config's labels, where Docker-era consumers read them (a label
		// the user sets wins).
		cfg.Labels = maps.Clone(cfg.Labels)
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		maps.Copy(cfg.Labels, ann)
	}
	o.Config.apply(cfg)
	if img, err = mutate.Config(img, *cfg); err != nil {
		return nil, fmt.Errorf("setting the image config: %w", err)
	}
	if img, err = mutate.CreatedAt(img, v1.Time{Time: created}); err != nil {
		return nil, fmt.Errorf("setting the creation time: %w", err)
	}
	if !oci {
		return img, nil
	}
	img, ok := mutate.Annotations(img, ann).(v1.Image)
	if !ok {
		return nil, errors.New("annotating the image: not an image")
	}
	return img, nil
}

// withoutAnnotations is an image whose manifest has no annotations: the
// base's describe the base (its source, its revision, its creation), never
// the image made on it, which names the base by AnnotationBaseName and
// AnnotationBaseDigest instead.
type withoutAnnotations struct{ v1.Image }

func (w withoutAnnotations) Manifest() (*v1.Manifest, error) {
	m, err := w.Image.Manifest()
	if err != nil {
		return nil, err
	}
	m = m.DeepCopy()
	m.Annotations = nil
	return m, nil
}

func partialDescriptor(img v1.Image) (v1.Descriptor, error) {
	d, err := img.Digest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	mt, err := img.MediaType()
	if err != nil {
		return v1.Descriptor{}, err
	}
	sz, err := img.Size()
	if err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{MediaType: mt, Digest: d, Size: sz}, nil
}

// emptyConfig is the OCI empty descriptor's content.
var emptyConfig = []byte("{}")

// artifact is an OCI image manifest of an artifact.
type artifact struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     types.MediaType   `json:"mediaType"`
	ArtifactType  string            `json:"artifactType"`
	Config        v1.Descriptor     `json:"config"`
	Layers        []v1.Descriptor   `json:"layers"`
	Subject       *v1.Descriptor    `json:"subject,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// rawManifest is a manifest to put as it is.
type rawManifest []byte

func (m rawManifest) RawManifest() ([]byte, error)        { return m, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

// putArtifact pushes one blob and an artifact manifest naming it into
// repo, by tag when tag is set, else by digest.
func putArtifact(repo name.Repository, tag *name.Tag, a Attachment, blob v1.Layer, subject *v1.Descriptor, created time.Time, ropts []remote.Option) (v1.Descriptor, error) {
	art, err := makeArtifact(a, blob, subject, created)
	if err != nil {
		return v1.Descriptor{}, err
	}
	if err := art.put(repo, tag, ropts); err != nil {
		return v1.Descriptor{}, err
	}
	return art.desc, nil
}

// madeArtifact is an artifact manifest and its blobs, not yet pushed.
type madeArtifact struct {
	title string
	blobs []v1.Layer
	raw   []byte
	desc  v1.Descriptor
}

// makeArtifact makes the artifact manifest of one blob.
func makeArtifact(a Attachment, blob v1.Layer, subject *v1.Descriptor, created time.Time) (*madeArtifact, error) {
	ann := map[string]string{AnnotationCreated: created.Format(time.RFC3339)}
	for k, v := range a.Annotations {
		ann[k] = v
	}
	cfg := static.NewLayer(emptyConfig, types.OCIEmptyJSON)
	var descs []v1.Descriptor
	for _, l := range []v1.Layer{cfg, blob} {
		d, err := layerDescriptor(l)
		if err != nil {
			return nil, err
		}
		descs = append(descs, d)
	}
	descs[1].Annotations = map[string]string{AnnotationTitle: a.Name}
	raw, err := json.Marshal(artifact{
		SchemaVersion: 2, MediaType: types.OCIManifestSchema1, ArtifactType: a.ArtifactType,
		Config: descs[0], Layers: descs[1:], Subject: subject,
		Annotations: ann,
	})
	if err != nil {
		return nil, err
	}
	h, sz, err := v1.SHA256(bytesReader(raw))
	if err != nil {
		return nil, err
	}
	return &madeArtifact{title: a.Name, blobs: []v1.Layer{cfg, blob}, raw: raw,
		desc: v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: h, Size: sz, ArtifactType: a.ArtifactType}}, nil
}

// put pushes the blobs and then the manifest into repo, by tag when tag
// is set, else by digest.
func (m *madeArtifact) put(repo name.Repository, tag *name.Tag, ropts []remote.Option) error {
	for _, l := range m.blobs {
		if err := remote.WriteLayer(repo, l, ropts...); err != nil {
			return fmt.Errorf("pushing a blob of %s to %s: %w", m.title, repo, err)
		}
	}
	var target name.Reference = repo.Digest(m.desc.Digest.String())
	if tag != nil {
		target = *tag
	}
	if err := remote.Put(target, rawManifest(m.raw), ropts...); err != nil {
		return fmt.Errorf("pushing the manifest of %s to %s: %w", m.title, repo, err)
	}
	return nil
}

func layerDescriptor(l v1.Layer) (v1.Descriptor, error) {
	d, err := l.Digest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	sz, err := l.Size()
	if err != nil {
		return v1.Descriptor{}, err
	}
	mt, err := l.MediaType()
	if err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{MediaType: mt, Digest: d, Size: sz}, nil
}
