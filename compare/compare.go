// Package compare decides whether independent rebuilders agree: each runner
// builds the same recipe on its own machine (`buildguard build
// --attest-only`) and signs a build-result statement about its control
// output with its own key; Compare verifies the signed statements, checks
// that they describe one recipe, and says whether at least K distinct
// signers agree on one output digest. A rebuild on one machine cannot rule
// out that machine; K machines that do not share a compromise can. See
// docs/rebuilders.md.
//
// Every statement is verified with sigstore-go (through the trust package)
// against the trusted public keys only. Key-signed build results carry no
// transparency-log entry, so none is required: the trust is in the keys,
// and a result says so (TlogWaived).
package compare

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/sigstore/sigstore-go/pkg/bundle"

	"github.com/buildguard/buildguard/attest"
	"github.com/buildguard/buildguard/trust"
)

// MediaType names the JSON encoding of a Result.
const MediaType = "application/vnd.buildguard.compare-result.v1+json"

// Limits on what Compare reads.
const (
	// MaxAttestations bounds the attestations of one comparison.
	MaxAttestations = 256
	// MaxBundleBytes bounds one signed build result.
	MaxBundleBytes = 4 << 20
)

// Input is one runner's signed build result (a Sigstore bundle, JSON).
type Input struct {
	// Name says which it is in messages and in the result, e.g. the file
	// name as given.
	Name   string
	Bundle []byte
}

// Key is a trusted runner key.
type Key struct {
	// Name says where it came from, e.g. the key file as given.
	Name string
	Key  trust.Key
}

// Options configure a comparison. The zero Threshold is the strictest:
// every attestation given must agree.
type Options struct {
	// Keys are the trusted runner keys; at least one is required.
	Keys []Key
	// Threshold is how many distinct signers must agree on one output
	// digest: 1 to the number of attestations; 0 means all of them.
	Threshold int
	// Expect, when set ("sha256:<hex>"), is the output digest they must
	// agree on, e.g. the local build's.
	Expect string
}

// UsageError is a comparison that cannot be attempted as asked (exit 2).
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *UsageError) Unwrap() error { return e.Err }

// ExitCode reports a usage error.
func (e *UsageError) ExitCode() int { return 2 }

func usagef(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// Validate checks the options for n attestations and returns the
// threshold that applies.
func (o Options) Validate(n int) (int, error) {
	if n == 0 {
		return 0, usagef("no attestation given: name the signed build results (build-result.sigstore.json) of the runners")
	}
	if n > MaxAttestations {
		return 0, usagef("%d attestations: at most %d", n, MaxAttestations)
	}
	if len(o.Keys) == 0 {
		return 0, usagef("no trusted key: give each runner's public key (--key runner-a.pub --key runner-b.pub ...)")
	}
	if o.Threshold < 0 || o.Threshold > n {
		return 0, usagef("threshold %d: want 1 to %d, the number of attestations given (0 means all)", o.Threshold, n)
	}
	if o.Expect != "" {
		if _, err := trust.ParseDigest(o.Expect); err != nil {
			return 0, &UsageError{Err: fmt.Errorf("expected output: %w", err)}
		}
	}
	if o.Threshold == 0 {
		return n, nil
	}
	return o.Threshold, nil
}

// ReadInput reads a signed build result from a file, bounded by
// MaxBundleBytes. Its Name is path as given.
func ReadInput(path string) (Input, error) {
	f, err := os.Open(path)
	if err != nil {
		return Input{}, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxBundleBytes+1))
	if err != nil {
		return Input{}, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(data) > MaxBundleBytes {
		return Input{}, fmt.Errorf("%s is larger than %d bytes: not a signed build result", path, MaxBundleBytes)
	}
	return Input{Name: path, Bundle: data}, nil
}

// Reason is a stable code for why an attestation does not count: the trust
// package's, whose signature-check reasons (untrusted-key, bad-signature,
// ...) pass through unchanged.
type Reason = trust.Reason

// The reasons besides the trust package's.
const (
	ReasonMalformed         Reason = "malformed"
	ReasonBadSignature             = trust.ReasonBadSignature
	ReasonUntrustedKey             = trust.ReasonUntrustedKey
	ReasonWrongPredicate    Reason = "wrong-predicate-type"
	ReasonNoOutput          Reason = "no-output"
	ReasonNotPassed         Reason = "not-passed"
	ReasonRecipeMismatch    Reason = "recipe-mismatch"
	ReasonDuplicateSigner   Reason = "duplicate-signer"
	ReasonConflictingSigner Reason = "conflicting-signer"
)

// Refusal is why an attestation does not count, as the trust package says
// why a signature does.
type Refusal = trust.Refusal

func refuse(reason Reason, format string, args ...any) *Refusal {
	return &Refusal{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// Signer is the trusted key that signed an attestation.
type Signer struct {
	// KeyID is "sha256:" and the hex SHA-256 of the key's PKIX encoding.
	KeyID string `json:"keyID"`
	// Key is the Name of the trusted key.
	Key string `json:"key"`
}

func (s Signer) String() string {
	if s.Key != "" {
		return s.Key + " (" + s.KeyID + ")"
	}
	return s.KeyID
}

// Runner is what became of one attestation, in the order given.
type Runner struct {
	Name string `json:"name"`
	// Counted says the attestation counts towards agreement.
	Counted bool `json:"counted"`
	// Signer is set once the signature verified.
	Signer *Signer `json:"signer,omitempty"`
	// OutputDigest, RecipeDigest and Decision are what the verified
	// statement says.
	OutputDigest string `json:"outputDigest,omitempty"`
	RecipeDigest string `json:"recipeDigest,omitempty"`
	Decision     string `json:"decision,omitempty"`
	// Refusal is why it does not count.
	Refusal *Refusal `json:"refusal,omitempty"`

	recipe *attest.Recipe
}

// Result is the comparison's verdict.
type Result struct {
	MediaType string `json:"mediaType"`
	// Agreed says at least Threshold distinct trusted signers agree on
	// OutputDigest (and it is Expect, when set), and every verified
	// attestation describes the same recipe.
	Agreed    bool   `json:"agreed"`
	Threshold int    `json:"threshold"`
	Given     int    `json:"given"`
	Expect    string `json:"expect,omitempty"`
	// OutputDigest is the digest agreed on; empty when none was.
	OutputDigest string `json:"outputDigest,omitempty"`
	// AgreedBy are the distinct signers of OutputDigest, in input order.
	AgreedBy []Signer `json:"agreedBy"`
	// Recipe is the recipe the verified attestations describe.
	Recipe       *attest.Recipe `json:"recipe,omitempty"`
	RecipeDigest string         `json:"recipeDigest,omitempty"`
	// TlogWaived: key-signed build results carry no transparency-log
	// entry, and none was required.
	TlogWaived bool     `json:"tlogWaived"`
	Runners    []Runner `json:"runners"`
	// Problems say why there is no agreement.
	Problems []string `json:"problems"`
}

// Marshal encodes the result byte-stably: indented, a final newline.
func (r *Result) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Compare verifies each signed build result and decides whether enough
// distinct runners agree. A refused attestation is data in the result; the
// error is a UsageError for options that cannot apply, or a verifier that
// cannot be made.
func Compare(inputs []Input, opts Options) (*Result, error) {
	threshold, err := opts.Validate(len(inputs))
	if err != nil {
		return nil, err
	}
	keys, names := dedupKeys(opts.Keys)
	v, err := trust.New(trust.Policy{Keys: keys, InsecureIgnoreTlog: true})
	if err != nil {
		return nil, &UsageError{Err: err}
	}
	res := &Result{MediaType: MediaType, Threshold: threshold, Given: len(inputs), Expect: opts.Expect, AgreedBy: []Signer{}, TlogWaived: true, Problems: []string{}}
	for _, in := range inputs {
		res.Runners = append(res.Runners, check(v, names, in))
	}
	res.checkRecipes()
	res.checkSigners()
	res.tally()
	return res, nil
}

// dedupKeys drops repeated keys, keeping the first name of each.
func dedupKeys(in []Key) ([]trust.Key, map[string]string) {
	var keys []trust.Key
	names := map[string]string{}
	for _, k := range in {
		if _, ok := names[k.Key.ID]; ok {
			continue
		}
		names[k.Key.ID] = k.Name
		keys = append(keys, k.Key)
	}
	return keys, names
}

// check verifies one attestation and reads its build result.
func check(v *trust.Verifier, names map[string]string, in Input) Runner {
	r := Runner{Name: in.Name}
	payload, subject, ref := envelope(in.Bundle)
	if ref != nil {
		r.Refusal = ref
		return r
	}
	c, err := v.VerifyBundle(in.Bundle, subject)
	if err != nil {
		r.Refusal = refuse(ReasonMalformed, "subject digest: %v", err)
		return r
	}
	if !c.Verified {
		r.Refusal = refuse(ReasonMalformed, "not verified")
		if c.Refusal != nil {
			r.Refusal = c.Refusal
		}
		return r
	}
	if c.Signer == nil || c.Signer.KeyID == "" {
		r.Refusal = refuse(ReasonUntrustedKey, "not signed by a trusted key")
		return r
	}
	r.Signer = &Signer{KeyID: c.Signer.KeyID, Key: names[c.Signer.KeyID]}
	p, err := attest.ParseBuildResult(payload)
	if err != nil {
		var pt *attest.PredicateTypeError
		if errors.As(err, &pt) {
			r.Refusal = refuse(ReasonWrongPredicate, "%v", err)
		} else {
			r.Refusal = refuse(ReasonMalformed, "%v", err)
		}
		return r
	}
	r.OutputDigest, r.RecipeDigest, r.Decision, r.recipe = p.OutputDigest, p.RecipeDigest, p.Decision, &p.Recipe
	switch {
	case p.OutputDigest == "":
		r.Refusal = refuse(ReasonNoOutput, "the runner's control run built no output (its decision: %s)", p.Decision)
	case p.Decision != "pass":
		r.Refusal = refuse(ReasonNotPassed, "the runner's own decision is %s (violations: %s): its evidence directory says why", p.Decision, list(p.Violations))
	default:
		r.Counted = true
	}
	return r
}

// envelope returns the DSSE payload of a bundle and the digest of the
// statement's first subject, which the signature must then bind. Nothing
// here is trusted before the signature verifies.
func envelope(data []byte) ([]byte, string, *Refusal) {
	if len(data) > MaxBundleBytes {
		return nil, "", refuse(ReasonMalformed, "larger than %d bytes", MaxBundleBytes)
	}
	var b bundle.Bundle
	if err := b.UnmarshalJSON(data); err != nil {
		return nil, "", refuse(ReasonMalformed, "not a Sigstore bundle: %v", err)
	}
	env := b.GetDsseEnvelope()
	if env == nil {
		return nil, "", refuse(ReasonMalformed, "the bundle holds no DSSE envelope: not a signed build result")
	}
	var st struct {
		PredicateType string `json:"predicateType"`
		Subject       []struct {
			Digest map[string]string `json:"digest"`
		} `json:"subject"`
	}
	if err := json.Unmarshal(env.GetPayload(), &st); err != nil {
		return nil, "", refuse(ReasonMalformed, "the envelope's payload is not an in-toto statement: %v", err)
	}
	if st.PredicateType != attest.BuildResultPredicateType {
		return nil, "", refuse(ReasonWrongPredicate, "predicate type %q is not a build result (%s): give the runners' %s", st.PredicateType, attest.BuildResultPredicateType, attest.BuildResultBundleFile)
	}
	if len(st.Subject) != 1 || st.Subject[0].Digest["sha256"] == "" {
		return nil, "", refuse(ReasonMalformed, "the statement has %d subjects: a build result has one, with a sha256 digest", len(st.Subject))
	}
	return env.GetPayload(), "sha256:" + st.Subject[0].Digest["sha256"], nil
}

// checkRecipes refuses every counted attestation whose recipe is not the
// one most distinct signers describe (the first given, on a tie), and
// names what differs. Any such attestation makes agreement impossible:
// runners that built different things cannot confirm one another.
func (res *Result) checkRecipes() {
	signers := map[string]map[string]bool{}
	var ref *attest.Recipe
	best := 0
	for _, r := range res.Runners {
		if !r.Counted {
			continue
		}
		d := r.recipe.Digest()
		if signers[d] == nil {
			signers[d] = map[string]bool{}
		}
		signers[d][r.Signer.KeyID] = true
		if len(signers[d]) > best {
			best, ref = len(signers[d]), r.recipe
		}
	}
	if ref == nil {
		return
	}
	res.Recipe, res.RecipeDigest = ref, ref.Digest()
	for i := range res.Runners {
		r := &res.Runners[i]
		if !r.Counted || r.recipe.Digest() == res.RecipeDigest {
			continue
		}
		r.Counted = false
		r.Refusal = refuse(ReasonRecipeMismatch, "describes another build than the others (%s differ): recipe %s, not %s", strings.Join(ref.Differences(*r.recipe), ", "), r.recipe.Digest(), res.RecipeDigest)
		res.Problems = append(res.Problems, fmt.Sprintf("%s: %s", r.Name, r.Refusal))
	}
}

// checkSigners counts each signer once. A signer with attestations of two
// different outputs counts for neither.
func (res *Result) checkSigners() {
	outputs := map[string]map[string]bool{}
	for _, r := range res.Runners {
		if r.Counted {
			if outputs[r.Signer.KeyID] == nil {
				outputs[r.Signer.KeyID] = map[string]bool{}
			}
			outputs[r.Signer.KeyID][r.OutputDigest] = true
		}
	}
	first := map[string]string{}
	for i := range res.Runners {
		r := &res.Runners[i]
		if !r.Counted {
			continue
		}
		id := r.Signer.KeyID
		switch {
		case len(outputs[id]) > 1:
			r.Counted = false
			r.Refusal = refuse(ReasonConflictingSigner, "%s signed build results of %d different outputs for one recipe: it counts for none", r.Signer, len(outputs[id]))
		case first[id] != "":
			r.Counted = false
			r.Refusal = refuse(ReasonDuplicateSigner, "%s signed %s too: a signer counts once", r.Signer, first[id])
		default:
			first[id] = r.Name
		}
	}
}

// tally finds the output digest at least Threshold distinct signers agree
// on. Two digests that both reach the threshold are no agreement.
func (res *Result) tally() {
	signers := map[string][]Signer{}
	var digests []string
	for _, r := range res.Runners {
		if !r.Counted {
			continue
		}
		if signers[r.OutputDigest] == nil {
			digests = append(digests, r.OutputDigest)
		}
		signers[r.OutputDigest] = append(signers[r.OutputDigest], *r.Signer)
	}
	var reached []string
	for _, d := range digests {
		if len(signers[d]) >= res.Threshold {
			reached = append(reached, d)
		}
	}
	agreed := ""
	switch {
	case res.Expect != "":
		if len(signers[res.Expect]) >= res.Threshold {
			agreed = res.Expect
		} else {
			res.Problems = append(res.Problems, fmt.Sprintf("%d distinct signer(s) attest the expected output %s: %d needed", len(signers[res.Expect]), res.Expect, res.Threshold))
		}
	case len(reached) == 1:
		agreed = reached[0]
	case len(reached) > 1:
		res.Problems = append(res.Problems, fmt.Sprintf("%d different outputs each reach the threshold of %d: %s", len(reached), res.Threshold, strings.Join(reached, ", ")))
	default:
		best := 0
		for _, d := range digests {
			best = max(best, len(signers[d]))
		}
		res.Problems = append(res.Problems, fmt.Sprintf("at most %d distinct signer(s) agree on one output: %d needed", best, res.Threshold))
	}
	if agreed == "" || len(res.Problems) > 0 {
		return
	}
	res.Agreed, res.OutputDigest, res.AgreedBy = true, agreed, signers[agreed]
}

func list(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
