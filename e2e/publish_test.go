//go:build e2e

package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/buildguard/buildguard/internal/harness"
)

// TestPublishScripts runs the testscript files in publish_scripts: the real
// buildguard binary builds through crun and publishes to a real
// distribution registry (Debian's docker-registry, which has no referrers
// API, so attachments go through the sha256-<hex> tag fallback). Each
// script has a registry of its own, so that its storage directory shows
// exactly what that script pushed. The real cosign v3 CLI is on PATH, and
// a real Rekor v2 log on loopback is shared by the scripts: $SIGSTORE holds
// its trusted_root.json and signing_config.json (made by cosign) and a
// cosign key pair (cosign.key, cosign.pub, no password).
func TestPublishScripts(t *testing.T) {
	harness.Require(t, "docker-registry")
	for _, tool := range []string{"crun", "busybox", "posix"} {
		harness.Require(t, tool)
	}
	cosignPath := cosignBin(t)
	harness.RequireRoot(t, "buildguard build needs root for crun")
	sigstore := sigstoreSetUp(t, cosignPath)
	testscript.Run(t, testscript.Params{
		Dir: "publish_scripts",
		Setup: func(env *testscript.Env) error {
			reg, err := scriptRegistry(t, env)
			if err != nil {
				return err
			}
			buildguardEnv(env, reg.Addr, filepath.Dir(cosignPath))
			env.Setenv("REGISTRY_STORAGE", reg.StorageDir)
			examples, err := filepath.Abs(filepath.Join("..", "examples"))
			if err != nil {
				return err
			}
			env.Setenv("EXAMPLES", examples)
			env.Setenv("SIGSTORE", sigstore)
			// cosign: no password on the key, no TUF or cache outside $WORK.
			env.Setenv("COSIGN_PASSWORD", "")
			env.Setenv("TUF_ROOT", filepath.Join(env.WorkDir, ".sigstore"))
			env.Setenv("SIGSTORE_NO_CACHE", "true")
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"push-busybox":     pushBusybox,
			"exit-code":        exitCode,
			"envsubst":         envsubst,
			"storage-snapshot": storageSnapshot,
			"referrers":        referrers,
			"gen-key":          genKey,
			"copy-referrers":   copyReferrers,
			"vsa-predicate":    vsaPredicate,
		},
	})
}

// storage-snapshot FILE: list every file and directory under the
// registry's storage (path, size) into FILE, sorted: two snapshots are
// equal only if nothing was written in between (no blob, no upload, no
// manifest, no tag).
func storageSnapshot(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: storage-snapshot FILE")
	}
	root := ts.Getenv("REGISTRY_STORAGE")
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		size := int64(0)
		if info.Mode().IsRegular() {
			size = info.Size()
		}
		lines = append(lines, fmt.Sprintf("%s %d", rel, size))
		return nil
	})
	ts.Check(err)
	sort.Strings(lines)
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), []byte(strings.Join(lines, "\n")+"\n"), 0o644))
}

// referrers FILE N: the image FILE names (the NAME:TAG@DIGEST line that
// buildguard build prints) has N referrers, as the registry lists them
// (through the tag fallback on distribution 2.8).
func referrers(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: referrers FILE N")
	}
	want, err := strconv.Atoi(args[1])
	ts.Check(err)
	ref, dig, ok := strings.Cut(strings.TrimSpace(ts.ReadFile(args[0])), "@")
	if !ok {
		ts.Fatalf("%s: want NAME:TAG@DIGEST", args[0])
	}
	tag, err := name.NewTag(ref)
	ts.Check(err)
	idx, err := remote.Referrers(tag.Context().Digest(dig))
	ts.Check(err)
	im, err := idx.IndexManifest()
	ts.Check(err)
	for _, m := range im.Manifests {
		ts.Logf("referrer %s %s %v", m.Digest, m.ArtifactType, m.Annotations)
	}
	if len(im.Manifests) != want {
		ts.Fatalf("%s has %d referrers, want %d", dig, len(im.Manifests), want)
	}
}

// gen-key KEY PUB: write a new ECDSA P-256 key as unencrypted PKCS#8 PEM
// to KEY and its public key (PKIX PEM) to PUB.
func genKey(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: gen-key KEY PUB")
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ts.Check(err)
	der, err := x509.MarshalPKCS8PrivateKey(k)
	ts.Check(err)
	pub, err := x509.MarshalPKIXPublicKey(k.Public())
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600))
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644))
}

// copy-referrers FILE REF: copy every Sigstore bundle attached to the image
// FILE names (the NAME:TAG@DIGEST line that buildguard build prints) onto
// the image REF (NAME@DIGEST), as someone with push access would copy a
// good image's statements onto another image: each referrer's blobs are
// copied into REF's repository and its manifest put again with REF as its
// subject (through the tag fallback on distribution 2.8).
func copyReferrers(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: copy-referrers FILE REF")
	}
	ref, dig, ok := strings.Cut(strings.TrimSpace(ts.ReadFile(args[0])), "@")
	if !ok {
		ts.Fatalf("%s: want NAME:TAG@DIGEST", args[0])
	}
	from, err := name.NewTag(ref)
	ts.Check(err)
	to, err := name.NewDigest(args[1])
	ts.Check(err)
	target, err := remote.Get(to)
	ts.Check(err)
	subject := v1.Descriptor{MediaType: target.MediaType, Digest: target.Digest, Size: target.Size}
	idx, err := remote.Referrers(from.Context().Digest(dig))
	ts.Check(err)
	im, err := idx.IndexManifest()
	ts.Check(err)
	n := 0
	for _, d := range im.Manifests {
		if !strings.HasPrefix(d.ArtifactType, "application/vnd.dev.sigstore.bundle") {
			continue
		}
		img, err := remote.Image(from.Context().Digest(d.Digest.String()))
		ts.Check(err)
		m, err := img.Manifest()
		ts.Check(err)
		for _, b := range append([]v1.Descriptor{m.Config}, m.Layers...) {
			l, err := img.LayerByDigest(b.Digest)
			if err != nil {
				l, err = remote.Layer(from.Context().Digest(b.Digest.String()))
			}
			ts.Check(err)
			ts.Check(remote.WriteLayer(to.Context(), l))
		}
		raw, err := img.RawManifest()
		ts.Check(err)
		var doc map[string]any
		ts.Check(json.Unmarshal(raw, &doc))
		doc["subject"] = subject
		raw, err = json.Marshal(doc)
		ts.Check(err)
		h, _, err := v1.SHA256(bytes.NewReader(raw))
		ts.Check(err)
		ts.Check(remote.Put(to.Context().Digest(h.String()), rawManifest(raw)))
		n++
	}
	if n == 0 {
		ts.Fatalf("%s has no bundle to copy", dig)
	}
	ts.Logf("copied %d bundle(s) onto %s", n, to)
}

// rawManifest is an OCI image manifest put as it is.
type rawManifest []byte

func (m rawManifest) RawManifest() ([]byte, error) { return m, nil }
func (m rawManifest) MediaType() (types.MediaType, error) {
	return types.OCIManifestSchema1, nil
}

// vsa-predicate STATEMENT RESULT DST: write the predicate of the VSA
// statement STATEMENT to DST with its verificationResult set to RESULT,
// for `cosign attest --predicate`: a VSA about the same image that says
// otherwise.
func vsaPredicate(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: vsa-predicate STATEMENT RESULT DST")
	}
	var st struct {
		Predicate map[string]any `json:"predicate"`
	}
	ts.Check(json.Unmarshal([]byte(ts.ReadFile(args[0])), &st))
	if st.Predicate == nil {
		ts.Fatalf("%s has no predicate", args[0])
	}
	st.Predicate["verificationResult"] = args[1]
	data, err := json.MarshalIndent(st.Predicate, "", "  ")
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(args[2]), data, 0o644))
}
