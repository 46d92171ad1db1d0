package trust

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/buildguard/buildguard/internal/atomicfile"
	"github.com/buildguard/buildguard/internal/strictjson"
)

// cacheFormat versions the result cache: a change of what is stored, or of
// how buildguard decides, changes it, and every older entry then misses.
const cacheFormat = "buildguard-verify-cache/4"

// maxCacheFile bounds a cached result.
const maxCacheFile = 8 << 20

// WithResultCache keeps the result of every verified image in dir (created,
// mode 0700, when missing), keyed by the image digest and a fingerprint of
// everything in the Policy that changes the answer: the trusted root, keys,
// identities, log threshold and waiver, builder IDs, source URIs, the VSA
// requirement and limits.
// A later Verifier with the same policy takes a verified result from it
// without reading the registry; online look-ups (Policy.RekorURL) are made
// for a cached result as for a new one. Refusals are never cached: a
// signature may be attached later. The directory must be writable by its
// owner only, as a cached result is trusted.
func WithResultCache(dir string) Option {
	return func(v *Verifier) { v.results = &resultCache{dir: dir} }
}

type resultCache struct {
	dir string
	// policy is the hex fingerprint of the policy; empty disables the
	// cache.
	policy string
}

// cacheRecord is one cached result. Tiled[i] are the tiled-log entries of
// Result.Candidates[i].
type cacheRecord struct {
	Format string         `json:"format"`
	Digest string         `json:"digest"`
	Policy string         `json:"policy"`
	Result *ImageResult   `json:"result"`
	Tiled  [][]tiledEntry `json:"tiled"`
}

func (c *resultCache) setup(v *Verifier) error {
	if c.dir == "" {
		return errors.New("the result cache needs a directory")
	}
	fp, err := policyFingerprint(v)
	if err != nil {
		v.warnf("result cache off: %v", err)
		return nil
	}
	c.policy = fp
	return nil
}

func (c *resultCache) path(d Digest) string {
	sum := sha256.Sum256([]byte(cacheFormat + "\n" + d.String() + "\n" + c.policy))
	return filepath.Join(c.dir, hex.EncodeToString(sum[:])+".json")
}

// load returns the cached verified result of d, or nil.
func (c *resultCache) load(v *Verifier, d Digest) *ImageResult {
	if c == nil || c.policy == "" {
		return nil
	}
	p := c.path(d)
	data, err := readBounded(p, maxCacheFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	var rec cacheRecord
	if err == nil {
		err = strictjson.Decode(data, maxCacheFile, &rec)
	}
	if err == nil && (rec.Format != cacheFormat || rec.Digest != d.String() || rec.Policy != c.policy || rec.Result == nil ||
		!rec.Result.Verified || len(rec.Tiled) != len(rec.Result.Candidates)) {
		err = errors.New("not a verified result of this image and policy")
	}
	if err != nil {
		v.warnf("ignoring cached result %s: %v", p, err)
		return nil
	}
	for i := range rec.Result.Candidates {
		rec.Result.Candidates[i].tiled = rec.Tiled[i]
	}
	return rec.Result
}

// store caches the verified result res of d.
func (c *resultCache) store(v *Verifier, d Digest, res *ImageResult) {
	if c == nil || c.policy == "" {
		return
	}
	rec := cacheRecord{Format: cacheFormat, Digest: d.String(), Policy: c.policy, Result: res, Tiled: make([][]tiledEntry, len(res.Candidates))}
	for i, cand := range res.Candidates {
		rec.Tiled[i] = cand.tiled
	}
	data, err := json.Marshal(rec)
	if err == nil {
		err = os.MkdirAll(c.dir, 0o700)
	}
	if err == nil {
		err = atomicfile.Write(c.path(d), data, 0o600)
	}
	if err != nil {
		v.warnf("caching the result of %s: %v", d, err)
	}
}

// policyFingerprint hashes everything in v's policy that changes a result.
func policyFingerprint(v *Verifier) (string, error) {
	p := v.policy
	rootSum, err := rootFingerprint(p)
	if err != nil {
		return "", err
	}
	keys := make([]string, 0, len(v.keyed))
	for _, kv := range v.keyed {
		keys = append(keys, kv.key.ID)
	}
	ids := slices.Clone(p.Identities)
	slices.SortFunc(ids, func(a, b Identity) int {
		return strings.Compare(a.Issuer+"\x00"+a.IssuerRegExp+"\x00"+a.Subject+"\x00"+a.SubjectRegExp,
			b.Issuer+"\x00"+b.IssuerRegExp+"\x00"+b.Subject+"\x00"+b.SubjectRegExp)
	})
	in := struct {
		Format             string
		TrustedRoot        string
		Keys               []string
		Identities         []Identity
		Threshold          int
		InsecureIgnoreTlog bool
		BuilderIDs         []string
		SourceURIs         []string
		RequireVSA         bool
		Limits             Limits
	}{cacheFormat, rootSum, sorted(keys), ids, v.threshold, p.InsecureIgnoreTlog, sorted(p.BuilderIDs), sorted(p.SourceURIs), p.RequireVSA, v.limits}
	data, err := json.Marshal(in)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

// rootMu serializes MarshalJSON of trusted roots: sigstore-go's rebuilds
// the root's protobuf in place.
var rootMu sync.Mutex

// rootFingerprint hashes the trusted root as sigstore-go writes it, with
// insignificant white space removed: the same root read from files that
// differ only in layout has the same fingerprint.
func rootFingerprint(p Policy) (string, error) {
	if p.TrustedRoot == nil {
		return "none", nil
	}
	m, ok := p.TrustedRoot.(json.Marshaler)
	if !ok {
		return "", fmt.Errorf("trusted material of type %T cannot be fingerprinted", p.TrustedRoot)
	}
	rootMu.Lock()
	data, err := m.MarshalJSON()
	rootMu.Unlock()
	if err != nil {
		return "", fmt.Errorf("fingerprinting the trusted root: %w", err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, data); err != nil {
		return "", fmt.Errorf("fingerprinting the trusted root: %w", err)
	}
	sum := sha256.Sum256(compact.Bytes())
	return hex.EncodeToString(sum[:]), nil
}

func sorted(list []string) []string {
	out := slices.Clone(list)
	slices.Sort(out)
	return slices.Compact(out)
}
