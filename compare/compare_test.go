package compare_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/buildguard/buildguard/attest"
	"github.com/buildguard/buildguard/compare"
	"github.com/buildguard/buildguard/trust"
)

const (
	good = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	evil = "sha256:6666666666666666666666666666666666666666666666666666666666666666"
	src  = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	bb   = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

// runner is one rebuilder: its signing key and the trusted public key.
type runner struct {
	name   string
	signer *attest.Signer
	key    compare.Key
}

func newRunner(t testing.TB, name string) runner {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := attest.NewSigner(k)
	if err != nil {
		t.Fatal(err)
	}
	tk, err := trust.NewKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return runner{name: name, signer: s, key: compare.Key{Name: name + ".pub", Key: tk}}
}

func result(output string) attest.BuildResult {
	return attest.BuildResult{
		Recipe: attest.Recipe{
			SourceDigest: src, Builder: bb, Command: []string{"sh", "-c", "make"}, Workdir: "/src",
			Env: map[string]string{"GOFLAGS": "-trimpath"}, SourceDateEpoch: 1700000000,
		},
		OutputDigest: output,
		Checks:       attest.Checks{Runs: 2},
		Runs:         []attest.BuildRun{{Index: 1, Builder: bb, OutputDigest: output}, {Index: 2, Builder: bb, Variations: []string{"path"}, OutputDigest: output}},
		Reproducible: true,
		Decision:     "pass",
	}
}

// statement encodes a build-result statement, edited by edit when given.
func statement(t testing.TB, p attest.BuildResult) []byte {
	t.Helper()
	st, err := attest.BuildResultStatement(p)
	if err != nil {
		t.Fatal(err)
	}
	data, err := attest.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func (r runner) sign(t testing.TB, st []byte) compare.Input {
	t.Helper()
	b, err := attest.Sign(t.Context(), r.signer, st)
	if err != nil {
		t.Fatal(err)
	}
	return compare.Input{Name: r.name + "/build-result.sigstore.json", Bundle: b}
}

func (r runner) attest(t testing.TB, output string) compare.Input {
	t.Helper()
	return r.sign(t, statement(t, result(output)))
}

func mustCompare(t *testing.T, in []compare.Input, o compare.Options) *compare.Result {
	t.Helper()
	res, err := compare.Compare(in, o)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func keys(rs ...runner) []compare.Key {
	var out []compare.Key
	for _, r := range rs {
		out = append(out, r.key)
	}
	return out
}

func refusal(t *testing.T, res *compare.Result, i int) compare.Reason {
	t.Helper()
	r := res.Runners[i]
	if r.Counted || r.Refusal == nil {
		t.Fatalf("runner %d (%s) counted, want it refused: %+v", i, r.Name, r)
	}
	return r.Refusal.Reason
}

// TestAgreement: three runners with their own keys attest one output:
// agreed n-of-n, the digest and the three signers named, byte-stable JSON.
func TestAgreement(t *testing.T) {
	a, b, c := newRunner(t, "a"), newRunner(t, "b"), newRunner(t, "c")
	in := []compare.Input{a.attest(t, good), b.attest(t, good), c.attest(t, good)}
	res := mustCompare(t, in, compare.Options{Keys: keys(a, b, c)})
	if !res.Agreed || res.OutputDigest != good || res.Threshold != 3 || len(res.AgreedBy) != 3 {
		t.Fatalf("want 3-of-3 agreement on %s, got %+v", good, res)
	}
	for i, s := range res.AgreedBy {
		if s.Key != []string{"a.pub", "b.pub", "c.pub"}[i] || s.KeyID != keys(a, b, c)[i].Key.ID {
			t.Errorf("agreedBy[%d] = %+v", i, s)
		}
	}
	if res.RecipeDigest != result(good).Recipe.Digest() {
		t.Errorf("recipe digest %s", res.RecipeDigest)
	}
	j1, err := res.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// The same attestations signed again (ECDSA signatures differ) give
	// the same result, byte for byte.
	in2 := []compare.Input{a.attest(t, good), b.attest(t, good), c.attest(t, good)}
	j2, err := mustCompare(t, in2, compare.Options{Keys: keys(a, b, c)}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(j1, j2) {
		t.Errorf("the result is not byte-stable:\n%s\n%s", j1, j2)
	}
}

// TestKOfN: one runner of three attests another output. Under threshold 2
// the two outvote it; n-of-n (the default) fails and lists each runner's
// digest; with --expect the agreed digest must be the expected one.
func TestKOfN(t *testing.T) {
	a, b, c := newRunner(t, "a"), newRunner(t, "b"), newRunner(t, "c")
	in := []compare.Input{a.attest(t, good), b.attest(t, evil), c.attest(t, good)}
	k := keys(a, b, c)

	res := mustCompare(t, in, compare.Options{Keys: k, Threshold: 2})
	if !res.Agreed || res.OutputDigest != good || len(res.AgreedBy) != 2 || res.AgreedBy[0].Key != "a.pub" || res.AgreedBy[1].Key != "c.pub" {
		t.Fatalf("2-of-3: want a and c to agree on %s, got %+v", good, res)
	}
	if res.Runners[1].OutputDigest != evil || !res.Runners[1].Counted {
		t.Errorf("the outvoted runner should still be listed with its digest: %+v", res.Runners[1])
	}

	res = mustCompare(t, in, compare.Options{Keys: k})
	if res.Agreed || res.OutputDigest != "" || len(res.Problems) == 0 {
		t.Fatalf("3-of-3 with one dissent agreed: %+v", res)
	}
	for i, want := range []string{good, evil, good} {
		if res.Runners[i].OutputDigest != want {
			t.Errorf("runner %d: digest %s, want %s", i, res.Runners[i].OutputDigest, want)
		}
	}

	if res := mustCompare(t, in, compare.Options{Keys: k, Threshold: 2, Expect: good}); !res.Agreed {
		t.Errorf("2-of-3 expecting %s: %+v", good, res.Problems)
	}
	if res := mustCompare(t, in, compare.Options{Keys: k, Threshold: 1, Expect: evil}); !res.Agreed {
		t.Errorf("1-of-3 expecting %s: %+v", evil, res.Problems)
	}
	if res := mustCompare(t, in, compare.Options{Keys: k, Threshold: 2, Expect: evil}); res.Agreed {
		t.Error("2-of-3 expecting the dissenting digest agreed")
	}
	// Threshold 1 without --expect: two outputs reach it, which is no
	// agreement.
	if res := mustCompare(t, in, compare.Options{Keys: k, Threshold: 1}); res.Agreed {
		t.Errorf("1-of-3 with two outputs agreed on %s", res.OutputDigest)
	}
}

// TestDuplicateSigner: one key signing twice counts once, so two bundles
// from one runner do not reach 2-of-2; a signer that attested two
// different outputs counts for neither.
func TestDuplicateSigner(t *testing.T) {
	a, b := newRunner(t, "a"), newRunner(t, "b")
	res := mustCompare(t, []compare.Input{a.attest(t, good), a.attest(t, good)}, compare.Options{Keys: keys(a, b)})
	if res.Agreed {
		t.Fatal("one signer twice reached 2-of-2")
	}
	if r := refusal(t, res, 1); r != compare.ReasonDuplicateSigner {
		t.Errorf("reason %s", r)
	}
	if !res.Runners[0].Counted {
		t.Error("the first of the signer's attestations should count")
	}
	// The same key given twice under two names is one signer too.
	aAgain := a.key
	aAgain.Name = "a-copy.pub"
	if res := mustCompare(t, []compare.Input{a.attest(t, good), a.attest(t, good)}, compare.Options{Keys: []compare.Key{a.key, aAgain}, Threshold: 2}); res.Agreed {
		t.Fatal("one key under two names reached 2-of-2")
	}

	res = mustCompare(t, []compare.Input{a.attest(t, good), a.attest(t, evil), b.attest(t, good)}, compare.Options{Keys: keys(a, b), Threshold: 1, Expect: good})
	if refusal(t, res, 0) != compare.ReasonConflictingSigner || refusal(t, res, 1) != compare.ReasonConflictingSigner {
		t.Errorf("an equivocating signer: %+v", res.Runners)
	}
	if !res.Agreed || len(res.AgreedBy) != 1 || res.AgreedBy[0].Key != "b.pub" {
		t.Errorf("b alone should carry 1-of-3: %+v", res)
	}
}

// TestRefusals: each bad attestation is refused with its own reason and
// does not count, while the good ones still do.
func TestRefusals(t *testing.T) {
	a, b, stranger := newRunner(t, "a"), newRunner(t, "b"), newRunner(t, "stranger")
	k := keys(a, b)

	other := result(good)
	other.Recipe.Command = []string{"sh", "-c", "make evil"}
	notPassed := result(good)
	notPassed.Decision, notPassed.Violations = "fail", []string{"reproducible"}
	prov := statement(t, result(good))
	prov = bytes.Replace(prov, []byte(attest.BuildResultPredicateType), []byte(attest.ProvenancePredicateType), 1)
	lying := statement(t, result(good))
	lying = bytes.Replace(lying, []byte(`"decision": "pass"`), []byte(`"decision": "pass", "extra": 1`), 1)

	cases := []struct {
		name string
		in   compare.Input
		want compare.Reason
	}{
		{"untrusted key", stranger.attest(t, good), compare.ReasonUntrustedKey},
		{"tampered payload", tamper(t, a.attest(t, good)), compare.ReasonBadSignature},
		{"wrong predicate type", a.sign(t, prov), compare.ReasonWrongPredicate},
		{"unknown predicate field", a.sign(t, lying), compare.ReasonMalformed},
		{"not a bundle", compare.Input{Name: "x", Bundle: []byte("{}")}, compare.ReasonMalformed},
		{"runner's own decision failed", a.sign(t, statement(t, notPassed)), compare.ReasonNotPassed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := mustCompare(t, []compare.Input{tc.in, b.attest(t, good)}, compare.Options{Keys: k, Threshold: 1})
			if got := refusal(t, res, 0); got != tc.want {
				t.Errorf("reason %s (%s), want %s", got, res.Runners[0].Refusal.Detail, tc.want)
			}
			if !res.Agreed || len(res.AgreedBy) != 1 || res.AgreedBy[0].Key != "b.pub" {
				t.Errorf("b alone should carry 1-of-2: %+v", res)
			}
			if res := mustCompare(t, []compare.Input{tc.in, b.attest(t, good)}, compare.Options{Keys: k}); res.Agreed {
				t.Error("2-of-2 with a refused attestation agreed")
			}
		})
	}

	// A different recipe is no agreement at any threshold, and names the
	// odd attestation and the field that differs.
	c := newRunner(t, "c")
	res := mustCompare(t, []compare.Input{a.attest(t, good), c.sign(t, statement(t, other)), b.attest(t, good)}, compare.Options{Keys: keys(a, b, c), Threshold: 2})
	if res.Agreed {
		t.Fatal("a different recipe agreed")
	}
	if refusal(t, res, 1) != compare.ReasonRecipeMismatch || !strings.Contains(res.Runners[1].Refusal.Detail, "command") {
		t.Errorf("the odd one: %+v", res.Runners[1].Refusal)
	}
	if !strings.Contains(strings.Join(res.Problems, "\n"), "c/build-result.sigstore.json") {
		t.Errorf("the problems do not name the odd attestation: %q", res.Problems)
	}
}

// tamper changes the output digest inside the signed payload.
func tamper(t *testing.T, in compare.Input) compare.Input {
	t.Helper()
	in.Bundle = tamperBytes(t, in.Bundle)
	return in
}

func tamperBytes(t testing.TB, bundle []byte) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(bundle, &m); err != nil {
		t.Fatal(err)
	}
	env := m["dsseEnvelope"].(map[string]any)
	var payload []byte
	if err := json.Unmarshal([]byte(`"`+env["payload"].(string)+`"`), &payload); err != nil {
		t.Fatal(err)
	}
	payload = bytes.ReplaceAll(payload, []byte(good[7:]), []byte(evil[7:]))
	env["payload"] = payload
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestUsage: impossible thresholds, no key, no attestation and a bad
// expected digest are usage errors (exit 2) before anything is verified.
func TestUsage(t *testing.T) {
	a := newRunner(t, "a")
	in := []compare.Input{a.attest(t, good), a.attest(t, good)}
	for _, tc := range []struct {
		name string
		in   []compare.Input
		o    compare.Options
	}{
		{"threshold > n", in, compare.Options{Keys: keys(a), Threshold: 3}},
		{"negative threshold", in, compare.Options{Keys: keys(a), Threshold: -1}},
		{"no key", in, compare.Options{}},
		{"no attestation", nil, compare.Options{Keys: keys(a)}},
		{"bad expect", in, compare.Options{Keys: keys(a), Expect: "sha256:xyz"}},
	} {
		_, err := compare.Compare(tc.in, tc.o)
		var ue *compare.UsageError
		if !errors.As(err, &ue) || ue.ExitCode() != 2 {
			t.Errorf("%s: %v, want a usage error", tc.name, err)
		}
	}
}

// TestBuildResultStatement: the statement's subject is the output, it
// parses back, and it is byte-stable whatever the order of maps and runs.
func TestBuildResultStatement(t *testing.T) {
	p := result(good)
	st := statement(t, p)
	q := result(good)
	q.Runs[0], q.Runs[1] = q.Runs[1], q.Runs[0]
	q.Recipe.Env = map[string]string{"GOFLAGS": "-trimpath"}
	if !bytes.Equal(st, statement(t, q)) {
		t.Error("the statement depends on the order of runs")
	}
	if !strings.Contains(string(st), `"name": "output"`) || !strings.Contains(string(st), `"sha256": "`+good[7:]+`"`) {
		t.Errorf("the subject is not the output:\n%s", st)
	}
	back, err := attest.ParseBuildResult(st)
	if err != nil {
		t.Fatal(err)
	}
	if back.OutputDigest != good || back.Recipe.Digest() != p.Recipe.Digest() {
		t.Errorf("parsed back: %+v", back)
	}
	// A subject that is not the predicate's output is refused.
	if _, err := attest.ParseBuildResult(bytes.Replace(st, []byte(`"sha256": "`+good[7:]+`"`), []byte(`"sha256": "`+evil[7:]+`"`), 1)); err == nil {
		t.Error("a subject other than the output was accepted")
	}
}

// TestRecipeBySigners: the reference recipe is the one most distinct
// signers describe, so one signer repeating another recipe cannot make the
// honest runners look like the odd ones.
func TestRecipeBySigners(t *testing.T) {
	a, b, m := newRunner(t, "a"), newRunner(t, "b"), newRunner(t, "m")
	other := result(good)
	other.Recipe.SourceDateEpoch = 1
	odd := statement(t, other)
	in := []compare.Input{m.sign(t, odd), m.sign(t, odd), m.sign(t, odd), a.attest(t, good), b.attest(t, good)}
	res := mustCompare(t, in, compare.Options{Keys: keys(a, b, m), Threshold: 2})
	if res.Agreed || res.RecipeDigest != result(good).Recipe.Digest() {
		t.Fatalf("reference recipe %s, agreed %v", res.RecipeDigest, res.Agreed)
	}
	for i := range 3 {
		if r := refusal(t, res, i); r != compare.ReasonRecipeMismatch || !strings.Contains(res.Runners[i].Refusal.Detail, "sourceDateEpoch") {
			t.Errorf("runner %d: %s", i, res.Runners[i].Refusal)
		}
	}
}
