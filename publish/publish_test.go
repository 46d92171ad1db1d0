package publish_test

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/buildguard/buildguard/builder"
	"github.com/buildguard/buildguard/internal/testimage"
	"github.com/buildguard/buildguard/publish"
)

const epoch = 1700000000

// output makes an output tree and its manifest.
func output(t *testing.T) (string, *builder.Manifest) {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	for p, body := range map[string]string{"bin/app": "#!/bin/sh\necho hi\n", "README": "read me\n"} {
		mode := os.FileMode(0o644)
		if strings.HasPrefix(p, "bin/") {
			mode = 0o755
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("bin/app", filepath.Join(dir, "app")); err != nil {
		t.Fatal(err)
	}
	m, err := builder.HashTree(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, m
}

func attachments() []publish.Attachment {
	return []publish.Attachment{
		{Name: "provenance.json", ArtifactType: "application/vnd.in-toto+json", MediaType: "application/vnd.in-toto+json", Data: []byte(`{"_type":"x"}`)},
		{Name: "sbom.spdx.json", ArtifactType: "application/spdx+json", MediaType: "application/spdx+json", Data: []byte(`{"spdxVersion":"SPDX-2.3"}`)},
	}
}

func startRegistry(t *testing.T, referrers bool) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.WithReferrersSupport(referrers), registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestPublishArtifactStable: without a base, the output is an OCI artifact;
// publishing the same output twice (to two registries, and again to the
// same) gives the same digest, and both attachments are listed by the
// referrers API.
func TestPublishArtifactStable(t *testing.T) {
	dir, m := output(t)
	var digests []string
	for _, host := range []string{startRegistry(t, true), startRegistry(t, true)} {
		for range 2 {
			res, err := publish.Publish(t.Context(), publish.Options{Image: host + "/app:v1", Dir: dir, Manifest: m, SourceDateEpoch: epoch, Attachments: attachments()})
			if err != nil {
				t.Fatal(err)
			}
			digests = append(digests, res.Digest)
			if len(res.Referrers) != 2 {
				t.Fatalf("referrers: %v", res.Referrers)
			}
		}
		got, err := remote.Get(mustRef(t, host+"/app:v1"))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`"artifactType":"` + publish.OutputArtifactType + `"`, `"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip"`, `"mediaType":"application/vnd.oci.empty.v1+json"`} {
			if !strings.Contains(string(got.Manifest), want) {
				t.Errorf("the artifact manifest lacks %s:\n%s", want, got.Manifest)
			}
		}
		idx, err := remote.Referrers(mustDigest(t, host+"/app@"+digests[0]), remote.WithContext(t.Context()))
		if err != nil {
			t.Fatal(err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		if len(im.Manifests) != 2 {
			t.Errorf("the registry lists %d referrers, want 2", len(im.Manifests))
		}
	}
	for _, d := range digests[1:] {
		if d != digests[0] {
			t.Fatalf("digests differ: %v", digests)
		}
	}
}

// TestPublishOnBase: with a pinned base the output is one more layer, its
// entries in path order with owner 0, SOURCE_DATE_EPOCH times and the
// manifest's modes; the same inputs give the same digest; and on a
// registry without the referrers API the attachments are found through
// the sha256-<hex> tag fallback.
func TestPublishOnBase(t *testing.T) {
	host := startRegistry(t, false)
	baseDigest, err := testimage.PushFiles(t.Context(), host+"/base:1", map[string]string{"etc/os-release": "ID=test\n"})
	if err != nil {
		t.Fatal(err)
	}
	dir, m := output(t)
	opts := publish.Options{Image: host + "/app:v1", Base: host + "/base@" + baseDigest, Dir: dir, Manifest: m, SourceDateEpoch: epoch, Attachments: attachments()}
	res, err := publish.Publish(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	again, err := publish.Publish(t.Context(), opts)
	if err != nil || again.Digest != res.Digest {
		t.Fatalf("second publish: %v %v, want %s", again, err, res.Digest)
	}
	img, err := remote.Image(mustRef(t, host+"/app:v1"))
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 2 {
		t.Fatalf("layers: %d %v", len(layers), err)
	}
	cf, err := img.ConfigFile()
	if err != nil || cf.Created.Unix() != epoch {
		t.Errorf("config created %v %v", cf.Created, err)
	}
	checkLayer(t, layers[1])

	fallback := host + "/app:" + strings.Replace(res.Digest, ":", "-", 1)
	idx, err := remote.Index(mustRef(t, fallback))
	if err != nil {
		t.Fatalf("the fallback tag %s: %v", fallback, err)
	}
	im, err := idx.IndexManifest()
	if err != nil || len(im.Manifests) != 2 {
		t.Fatalf("fallback index: %v %v", im, err)
	}
}

func checkLayer(t *testing.T, l v1.Layer) {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	var got []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.ModTime.Unix() != epoch || h.Uid != 0 || h.Gid != 0 || h.Uname != "" {
			t.Errorf("%s: time %v owner %d:%d %q", h.Name, h.ModTime, h.Uid, h.Gid, h.Uname)
		}
		got = append(got, h.Name+" "+os.FileMode(h.Mode).String())
	}
	want := "README -rw-r--r--,app -rwxrwxrwx,bin/ -rwxr-xr-x,bin/app -rwxr-xr-x"
	if strings.Join(got, ",") != want {
		t.Errorf("layer entries:\n got %s\nwant %s", strings.Join(got, ","), want)
	}
}

// TestPublishRefusesATamperedOutput: a file changed after it was hashed is
// not published.
func TestPublishRefusesATamperedOutput(t *testing.T) {
	host := startRegistry(t, true)
	dir, m := output(t)
	if err := os.WriteFile(filepath.Join(dir, "README"), []byte("READ ME\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := publish.Publish(t.Context(), publish.Options{Image: host + "/app:v1", Dir: dir, Manifest: m, SourceDateEpoch: epoch})
	if err == nil || !strings.Contains(err.Error(), "README") {
		t.Fatalf("published a tampered output: %v", err)
	}
	if _, err := remote.Head(mustRef(t, host+"/app:v1")); err == nil {
		t.Error("the tag exists")
	}
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustDigest(t *testing.T, s string) name.Digest {
	t.Helper()
	d, err := name.NewDigest(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// baseWithConfig pushes a base image with its own command, environment,
// labels and manifest annotations, as real bases have.
func baseWithConfig(t *testing.T, host string, oci bool) string {
	t.Helper()
	img, err := testimage.Files(map[string]string{"etc/os-release": "ID=test\n"})
	if err != nil {
		t.Fatal(err)
	}
	if oci {
		img = mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), types.OCIConfigJSON)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config.DeepCopy()
	c.Entrypoint, c.Cmd = []string{"/bin/base-entry"}, []string{"--base-arg"}
	c.Env = []string{"PATH=/usr/bin:/bin", "TZ=Europe/Paris"}
	c.Labels = map[string]string{"org.example.base": "1"}
	c.WorkingDir, c.User = "/base", "0"
	if img, err = mutate.Config(img, *c); err != nil {
		t.Fatal(err)
	}
	img = mutate.Annotations(img, map[string]string{publish.AnnotationSource: "https://base.example/base", "org.opencontainers.image.title": "base"}).(v1.Image)
	d, err := testimage.Push(t.Context(), host+"/base:1", img)
	if err != nil {
		t.Fatal(err)
	}
	return host + "/base@" + d
}

// TestPublishImageConfig: the image config set in publish lands in the
// pushed image's config over the base's (an entrypoint clearing the base's
// cmd, env replaced in place and added in name order, labels merged), the
// manifest of an OCI image carries the source, revision, creation time and
// base as OCI annotations and none of the base's own (a Docker manifest,
// which has no annotations, carries them as labels), and the same inputs
// give the same digest, however the maps iterate.
func TestPublishImageConfig(t *testing.T) {
	t.Run("oci", func(t *testing.T) { testPublishImageConfig(t, true) })
	t.Run("docker", func(t *testing.T) { testPublishImageConfig(t, false) })
}

func testPublishImageConfig(t *testing.T, oci bool) {
	host := startRegistry(t, false)
	base := baseWithConfig(t, host, oci)
	dir, m := output(t)
	commit := "0123456789abcdef0123456789abcdef01234567"
	opts := func(epoch int64) publish.Options {
		return publish.Options{
			Image: host + "/app:v1", Base: base, Dir: dir, Manifest: m, SourceDateEpoch: epoch,
			Config: publish.ImageConfig{
				Entrypoint: []string{"/bin/app", "--serve"},
				Env:        map[string]string{"TZ": "UTC", "APP_MODE": "prod", "B": "2", "A": "1"},
				WorkingDir: "/srv", User: "65532:65532",
				Labels: map[string]string{"org.example.team": "platform", "org.example.base": "overridden"},
			},
			Annotations: map[string]string{publish.AnnotationSource: "https://github.com/org/repo.git", publish.AnnotationRevision: commit},
		}
	}
	var digests []string
	for range 4 {
		res, err := publish.Publish(t.Context(), opts(epoch))
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, res.Digest)
	}
	for _, d := range digests[1:] {
		if d != digests[0] {
			t.Fatalf("not byte-stable: %v", digests)
		}
	}
	img, err := remote.Image(mustRef(t, host+"/app@"+digests[0]))
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if strings.Join(c.Entrypoint, " ") != "/bin/app --serve" || len(c.Cmd) != 0 {
		t.Errorf("entrypoint %q cmd %q, want the program and no base argument", c.Entrypoint, c.Cmd)
	}
	if got := strings.Join(c.Env, " "); got != "PATH=/usr/bin:/bin TZ=UTC A=1 APP_MODE=prod B=2" {
		t.Errorf("env %s", got)
	}
	if c.WorkingDir != "/srv" || c.User != "65532:65532" {
		t.Errorf("workdir %q user %q", c.WorkingDir, c.User)
	}
	if c.Labels["org.example.team"] != "platform" || c.Labels["org.example.base"] != "overridden" {
		t.Errorf("labels %v", c.Labels)
	}
	mf, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	baseRef := mustDigest(t, base)
	want := map[string]string{
		publish.AnnotationSource: "https://github.com/org/repo.git", publish.AnnotationRevision: commit,
		publish.AnnotationCreated: "2023-11-14T22:13:20Z", publish.AnnotationBaseName: baseRef.Context().Name(),
		publish.AnnotationBaseDigest: baseRef.DigestStr(),
	}
	// OCI: the manifest's annotations are exactly these, the labels the
	// base's and the user's; Docker: no annotations, these among the labels.
	got, wantLen := mf.Annotations, len(want)
	if oci && len(c.Labels) != 2 {
		t.Errorf("labels %v, want the base's and the user's only", c.Labels)
	}
	if !oci {
		got, wantLen = c.Labels, len(want)+2
		if len(mf.Annotations) != 0 {
			t.Errorf("a Docker manifest with annotations %v", mf.Annotations)
		}
	}
	if len(got) != wantLen {
		t.Errorf("annotations %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, got[k], v)
		}
	}

	// Another SOURCE_DATE_EPOCH is another image; cmd alone keeps the
	// base's entrypoint, as Docker does.
	other, err := publish.Publish(t.Context(), opts(epoch+1))
	if err != nil || other.Digest == digests[0] {
		t.Errorf("another epoch: %v %v", other, err)
	}
	o := opts(epoch)
	o.Config = publish.ImageConfig{Cmd: []string{"--port", "8080"}}
	res, err := publish.Publish(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	img, err = remote.Image(mustRef(t, host+"/app@"+res.Digest))
	if err != nil {
		t.Fatal(err)
	}
	if cf, err = img.ConfigFile(); err != nil || strings.Join(cf.Config.Entrypoint, " ") != "/bin/base-entry" || strings.Join(cf.Config.Cmd, " ") != "--port 8080" {
		t.Errorf("cmd alone: %+v %v", cf.Config, err)
	}

	// Without a base there is no image to configure.
	o = opts(epoch)
	o.Base = ""
	if _, err := publish.Publish(t.Context(), o); err == nil || !strings.Contains(err.Error(), "needs a base") {
		t.Errorf("image config without a base: %v", err)
	}
}

// TestPublishArtifactNamesSource: without a base, the artifact's manifest
// carries the source annotations beside its creation time.
func TestPublishArtifactNamesSource(t *testing.T) {
	host := startRegistry(t, true)
	dir, m := output(t)
	res, err := publish.Publish(t.Context(), publish.Options{Image: host + "/app:v1", Dir: dir, Manifest: m, SourceDateEpoch: epoch,
		Annotations: map[string]string{publish.AnnotationRevision: "abc123", publish.AnnotationSource: "https://github.com/org/repo"}})
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(mustRef(t, host+"/app@"+res.Digest))
	if err != nil {
		t.Fatal(err)
	}
	var mf v1.Manifest
	if err := json.Unmarshal(desc.Manifest, &mf); err != nil {
		t.Fatal(err)
	}
	if mf.Annotations[publish.AnnotationRevision] != "abc123" || mf.Annotations[publish.AnnotationSource] != "https://github.com/org/repo" ||
		mf.Annotations[publish.AnnotationCreated] != "2023-11-14T22:13:20Z" {
		t.Errorf("annotations %v", mf.Annotations)
	}
}

// TestSubjectIsWhatPublishPushes: Subject, which pushes nothing, gives the
// digest Publish pushes, for an artifact and for an image on a base with
// an image config, so that a rebuild can compare its output with a
// published one without a registry to push to.
func TestSubjectIsWhatPublishPushes(t *testing.T) {
	host := startRegistry(t, false)
	baseDigest, err := testimage.PushFiles(t.Context(), host+"/base:1", map[string]string{"etc/os-release": "ID=test\n"})
	if err != nil {
		t.Fatal(err)
	}
	dir, m := output(t)
	ann := map[string]string{publish.AnnotationRevision: "0123456789abcdef0123456789abcdef01234567"}
	for _, o := range []publish.Options{
		{Image: host + "/artifact:v1", Dir: dir, Manifest: m, SourceDateEpoch: epoch, Annotations: ann},
		{Image: host + "/image:v1", Base: host + "/base@" + baseDigest, Dir: dir, Manifest: m, SourceDateEpoch: epoch, Annotations: ann,
			Config: publish.ImageConfig{Entrypoint: []string{"/app"}, Env: map[string]string{"A": "1"}}},
	} {
		before, err := remote.List(mustRef(t, o.Image).Context())
		if err == nil && len(before) > 0 {
			t.Fatalf("%s exists before the test: %v", o.Image, before)
		}
		d, err := publish.Subject(t.Context(), o)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := remote.Head(mustRef(t, o.Image)); err == nil {
			t.Fatalf("Subject pushed %s", o.Image)
		}
		o.Attachments = attachments()
		res, err := publish.Publish(t.Context(), o)
		if err != nil {
			t.Fatal(err)
		}
		if d.Digest.String() != res.Digest {
			t.Errorf("%s: Subject says %s, Publish pushed %s", o.Image, d.Digest, res.Digest)
		}
	}
}

// TestPublishAboutFailsPushesNothing: About (which signs, and may fail,
// e.g. when the transparency log is down) is called with the digest that
// is then pushed, and before anything is pushed: when it fails, the
// registry has no output, by tag or by digest, on a base or as an
// artifact.
func TestPublishAboutFailsPushesNothing(t *testing.T) {
	host := startRegistry(t, true)
	baseDigest, err := testimage.PushFiles(t.Context(), host+"/base:1", map[string]string{"etc/os-release": "ID=test\n"})
	if err != nil {
		t.Fatal(err)
	}
	dir, m := output(t)
	for i, base := range []string{"", host + "/base@" + baseDigest} {
		var seen v1.Descriptor
		refused := errors.New("logging the signature: log down")
		img := fmt.Sprintf("%s/app%d", host, i)
		opts := publish.Options{Image: img + ":v1", Base: base, Dir: dir, Manifest: m, SourceDateEpoch: epoch,
			About: func(d v1.Descriptor) ([]publish.Attachment, error) { seen = d; return nil, refused }}
		if res, err := publish.Publish(t.Context(), opts); !errors.Is(err, refused) || res != nil {
			t.Fatalf("base %q: got %v, %+v", base, err, res)
		}
		if _, err := remote.Head(mustRef(t, img+":v1")); err == nil {
			t.Fatalf("base %q: the tag was pushed although About failed", base)
		}
		if _, err := remote.Head(mustDigest(t, img+"@"+seen.Digest.String())); err == nil {
			t.Fatalf("base %q: the output was pushed by digest although About failed", base)
		}
		opts.About = func(d v1.Descriptor) ([]publish.Attachment, error) { seen = d; return nil, nil }
		res, err := publish.Publish(t.Context(), opts)
		if err != nil {
			t.Fatal(err)
		}
		if res.Digest != seen.Digest.String() {
			t.Errorf("base %q: About saw %s, %s was pushed", base, seen.Digest, res.Digest)
		}
	}
}
