package config_test

import (
	"strings"
	"testing"

	"github.com/buildguard/buildguard/config"
)

// head is a valid configuration of four lines; cases add lines from line 5
// on (indented lines continue the builder mapping).
const head = "apiVersion: buildguard/v1\n" +
	"builder:\n" +
	"  image: golang:1.26\n" +
	"  command: [go, build]"

const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// problemCases are files with problems and the problems a user sees: every
// one, in line order, each starting with FILE:LINE: FIELD: and the start of
// its message. FuzzParse uses the files as seeds too.
var problemCases = []struct {
	name string
	yaml []byte
	want []string // prefixes of the problems, in order
}{
	// Dependencies.
	{"dependency without a type", doc(head, "dependencies:", "  - path: ."),
		[]string{"buildguard.yaml:6: dependencies[0].type: required: one of gomod, npm, file"}},
	{"unknown dependency type", doc(head, "dependencies:", "  - {type: cargo, path: .}"),
		[]string{`buildguard.yaml:6: dependencies[0].type: unknown dependency type "cargo"`}},
	{"gomod outside the source", doc(head, "dependencies:", "  - {type: gomod, path: ../other}"),
		[]string{`buildguard.yaml:6: dependencies[0].path: want a directory inside the source, relative to it, got "../other"`}},
	{"npm with a url", doc(head, "dependencies:", "  - {type: npm, path: web, url: https://x.example/a.tgz}"),
		[]string{"buildguard.yaml:6: dependencies[0].url: is not a field of a npm dependency (it takes path)"}},
	{"file without its digest", doc(head, "dependencies:", "  - {type: file, url: https://x.example/a.tgz, sha256: ABC, dest: /etc/a.tgz}"),
		[]string{`buildguard.yaml:6: dependencies[0].sha256: want the file's sha256 as 64 lowercase hex digits (sha256sum prints it), got "ABC"`,
			"buildguard.yaml:6: dependencies[0].dest: want a clean path relative to builder.workdir"}},
	{"file from ftp", doc(head, "dependencies:", "  - {type: file, url: ftp://x.example/a.tgz, sha256: "+strings.Repeat("ab", 32)+", dest: a.tgz}"),
		[]string{`buildguard.yaml:6: dependencies[0].url: want an http(s) URL, got "ftp://x.example/a.tgz"`}},
	{"unknown dependency field", doc(head, "dependencies:", "  - {type: gomod, path: ., lock: go.sum}"),
		[]string{"buildguard.yaml:6: dependencies[0].lock: unknown field; known fields here: type, path, url, sha256, dest"}},
	{"builder.env sets what gomod dependencies set", doc(head, "  env: {GOPROXY: \"off\", CGO_ENABLED: \"0\"}", "dependencies:", "  - {type: gomod, path: .}"),
		[]string{"buildguard.yaml:5: builder.env.GOPROXY: GOPROXY is set by buildguard for the gomod dependencies it fetched"}},
	{"negative scratch", doc(head, "  limits: {scratch: -1}"),
		[]string{"buildguard.yaml:5: builder.limits.scratch: must not be negative"}},
	// Unknown fields.
	{"unknown top-level field", doc(head, "cache: /tmp"),
		[]string{"buildguard.yaml:5: cache: unknown field; known fields here: apiVersion, source, builder, sourceDateEpoch, dependencies, reproduce, base, publish, trust, signing, policy"}},
	{"unknown nested field", doc(head, "  limits: {memory: 1Gi, cpus: 2}"),
		[]string{"buildguard.yaml:5: builder.limits.cpus: unknown field; known fields here: memory, pids, scratch"}},
	{"unknown field in a list element", doc(head, "reproduce:", "  diverse:", "    - image: other/go@"+digest, "      tag: v1"),
		[]string{"buildguard.yaml:8: reproduce.diverse[0].tag: unknown field; known fields here: image"}},
	{"unknown field in an identity", doc(head, "trust:", "  identities:", "    - {issuer: a, subject: b}", "    - issuer: a", "      subject: b", "      san: c"),
		[]string{`buildguard.yaml:10: trust.identities[1].san: unknown field; known fields here: issuer, issuerRegExp, subject, subjectRegExp`}},
	{"unknown field in signing", doc(head, "signing:", "  key: cosign.key", "  rekor: https://rekor.example"),
		[]string{`buildguard.yaml:7: signing.rekor: unknown field; known fields here: key, config`}},
	{"signing as a list", doc(head, "signing: [cosign.key]"),
		[]string{`buildguard.yaml:5: signing: want`}},
	{"signing key typo", doc(head, "signing:", "  kye: cosign.key"),
		[]string{`buildguard.yaml:6: signing.kye: unknown field; did you mean "key"?`}},
	{"odd key is quoted", doc(head, "\"re kor\": {}"),
		[]string{`buildguard.yaml:5: ["re kor"]: unknown field`}},

	// Did you mean?
	{"typo", doc("apiVersion: buildguard/v1", "builder:", "  imgae: golang:1.26", "  command: [go]"),
		[]string{`buildguard.yaml:3: builder.imgae: unknown field; did you mean "image"?`}},
	{"snake case", doc(head, "trust:", "  trusted_root: root.json"),
		[]string{`buildguard.yaml:6: trust.trusted_root: unknown field; did you mean "trustedRoot"?`}},
	{"wrong case", doc(head, "policy: {builderIds: [x]}"),
		[]string{`buildguard.yaml:5: policy.builderIds: unknown field; did you mean "builderIDs"?`}},
	{"kebab case", doc(head, "source-date-epoch: 0"),
		[]string{`buildguard.yaml:5: source-date-epoch: unknown field; did you mean "sourceDateEpoch"?`}},
	{"variation typo", doc(head, "reproduce: {variations: [timezon]}"),
		[]string{`buildguard.yaml:5: reproduce.variations[0]: unknown variation "timezon"; did you mean "timezone"?`}},

	// Duplicates.
	{"duplicate field", doc(head, "  image: golang:1.27"),
		[]string{"buildguard.yaml:5: builder.image: duplicate field (first at line 3)"}},
	{"duplicate top-level field", doc(head, "builder: {}"),
		[]string{"buildguard.yaml:5: builder: duplicate field (first at line 2)"}},
	{"duplicate env key", doc(head, "  env:", "    GOFLAGS: -mod=vendor", "    GOFLAGS: -trimpath"),
		[]string{"buildguard.yaml:7: builder.env.GOFLAGS: duplicate key (first at line 6)"}},

	// Wrong types.
	{"string for a list", doc("apiVersion: buildguard/v1", "builder:", "  image: golang:1.26", "", "", "", "  command: go build"),
		[]string{"buildguard.yaml:7: builder.command: want a list of strings, got a string"}},
	{"list in a list of strings", doc(head, "policy: {builderIDs: [a, [b]]}"),
		[]string{"buildguard.yaml:5: policy.builderIDs[1]: want a string, got a list"}},
	{"list for a mapping", doc(head, "reproduce: [2]"),
		[]string{"buildguard.yaml:5: reproduce: want a mapping, got a list"}},
	{"string for an integer", doc(head, "reproduce: {runs: \"2\"}"),
		[]string{"buildguard.yaml:5: reproduce.runs: want an integer, got a string"}},
	{"float for an integer", doc(head, "reproduce: {runs: 2.5}"),
		[]string{"buildguard.yaml:5: reproduce.runs: want an integer, got a number"}},
	{"integer out of range", doc(head, "  limits: {pids: 99999999999999999999}"),
		[]string{`buildguard.yaml:5: builder.limits.pids: want an integer, got a number`}},
	{"yes for a boolean", doc(head, "policy: {requireDiverse: yes}"),
		[]string{"buildguard.yaml:5: policy.requireDiverse: want a boolean (true or false), got a string"}},
	{"number for a duration", doc(head, "  timeout: 600"),
		[]string{"buildguard.yaml:5: builder.timeout: want a duration such as 30m or 1h30m, got an integer"}},
	{"malformed duration", doc(head, "  timeout: 10 minutes"),
		[]string{`buildguard.yaml:5: builder.timeout: want a duration such as 30m or 1h30m, got "10 minutes"`}},
	{"list for env", doc(head, "  env: [A=1]"),
		[]string{"buildguard.yaml:5: builder.env: want a mapping of names to strings, got a list"}},
	{"mapping for a diverse list", doc(head, "reproduce: {diverse: {image: x}}"),
		[]string{"buildguard.yaml:5: reproduce.diverse: want a list of mappings, got a mapping"}},
	{"mapping for a path", doc(head, "trust: {keys: [{path: a}]}"),
		[]string{"buildguard.yaml:5: trust.keys[0]: want a path, got a mapping"}},
	{"top level is a list", doc("- apiVersion: buildguard/v1"),
		[]string{`buildguard.yaml:1: want a mapping starting with "apiVersion: buildguard/v1", got a list`}},
	{"alias", doc(head, "base: &b debian", "publish: {image: *b}"),
		[]string{"buildguard.yaml:6: publish.image: YAML aliases (*b) are not supported"}},
	{"merge key", doc(head, "trust:", "  <<: {keys: [a]}"),
		[]string{`buildguard.yaml:6: trust["<<"]: YAML merge keys (<<) are not supported`}},
	{"application tag", doc(head, "base: !image debian"),
		[]string{"buildguard.yaml:5: base: unsupported YAML tag !image"}},
	{"binary tag", doc(head, "base: !!binary ZGViaWFu"),
		[]string{"buildguard.yaml:5: base: unsupported YAML tag !!binary"}},

	// Validation.
	{"builder.image required", doc("apiVersion: buildguard/v1", "builder:", "  command: [go, build]"),
		[]string{"buildguard.yaml:2: builder.image: required"}},
	{"builder required", doc("apiVersion: buildguard/v1"),
		[]string{"buildguard.yaml: builder.image: required", "buildguard.yaml: builder.command: required"}},
	{"empty command", doc("apiVersion: buildguard/v1", "builder:", "  image: golang:1.26", "  command: []"),
		[]string{"buildguard.yaml:4: builder.command: required: the build command as a list"}},
	{"empty program", doc("apiVersion: buildguard/v1", "builder:", "  image: golang:1.26", "  command: ['', build]"),
		[]string{"buildguard.yaml:4: builder.command[0]: must not be empty"}},
	{"NUL in an argument", doc(head, "  env: {A: \"x\\0y\"}"),
		[]string{"buildguard.yaml:5: builder.env.A: must not contain a NUL byte"}},
	{"zero timeout", doc(head, "  timeout: 0s"),
		[]string{"buildguard.yaml:5: builder.timeout: must be greater than 0, got 0s"}},
	{"negative timeout", doc(head, "  timeout: -1m"),
		[]string{"buildguard.yaml:5: builder.timeout: must be greater than 0, got -1m0s"}},
	{"unknown runtime", doc(head, "  runtime: kata"),
		[]string{`buildguard.yaml:5: builder.runtime: unknown runtime "kata": want one of auto, crun, runc, runsc, bwrap, docker, podman`}},
	{"memory with B", doc(head, "  limits: {memory: 4GB}"),
		[]string{`buildguard.yaml:5: builder.limits.memory: want a quantity such as 512Mi, 4Gi, 1G or a number of bytes, got "4GB": units take no B`}},
	{"negative memory", doc(head, "  limits: {memory: -1Gi}"),
		[]string{"buildguard.yaml:5: builder.limits.memory: must not be negative"}},
	{"negative pids", doc(head, "  limits: {pids: -1}"),
		[]string{"buildguard.yaml:5: builder.limits.pids: must not be negative"}},
	{"zero runs", doc(head, "reproduce:", "  runs: 0"),
		[]string{"buildguard.yaml:6: reproduce.runs: must be at least 1 (run 1 is the control), got 0"}},
	{"unknown variation", doc(head, "reproduce: {variations: [path, network]}"),
		[]string{`buildguard.yaml:5: reproduce.variations[1]: unknown variation "network": want one of path, timezone, locale, umask, hostname, domainname, uid, env-order, extra-env, time`}},
	{"duplicate variation", doc(head, "reproduce:", "  variations:", "    - umask", "    - time", "    - umask"),
		[]string{`buildguard.yaml:9: reproduce.variations[2]: duplicate variation "umask" (also reproduce.variations[0])`}},
	{"epoch not a number", doc(head, "sourceDateEpoch: yesterday"),
		[]string{`buildguard.yaml:5: sourceDateEpoch: want empty or a non-negative integer (seconds since 1970-01-01 UTC), got "yesterday"`}},
	{"negative epoch", doc(head, "sourceDateEpoch: -1"),
		[]string{`buildguard.yaml:5: sourceDateEpoch: want empty or a non-negative integer`}},
	{"relative workdir", doc(head, "  workdir: src"),
		[]string{`buildguard.yaml:5: builder.workdir: want an absolute path in the container, such as /src, got "src"`}},
	{"unclean workdir", doc(head, "  workdir: /src/../etc"),
		[]string{`buildguard.yaml:5: builder.workdir: want a clean path`}},
	{"root workdir", doc(head, "  workdir: /"),
		[]string{`buildguard.yaml:5: builder.workdir: must not be /`}},
	{"reserved env", doc(head, "  env:", "    HOME: /root", "    PATH: /bin", "    SOURCE_DATE_EPOCH: 0"),
		[]string{
			"buildguard.yaml:6: builder.env.HOME: HOME is set by buildguard and cannot be configured",
			"buildguard.yaml:7: builder.env.PATH: PATH is set by buildguard and cannot be configured",
			"buildguard.yaml:8: builder.env.SOURCE_DATE_EPOCH: SOURCE_DATE_EPOCH is set by buildguard and cannot be configured",
		}},
	{"invalid env names", doc(head, "  env: {1X: a, A-B: b, \"\": c}"),
		[]string{
			`buildguard.yaml:5: builder.env[""]: invalid variable name ""`,
			`buildguard.yaml:5: builder.env["1X"]: invalid variable name "1X"`,
			`buildguard.yaml:5: builder.env.A-B: invalid variable name "A-B"`,
		}},
	{"malformed builder image", doc("apiVersion: buildguard/v1", "builder:", "  image: Golang:1.26", "  command: [go]"),
		[]string{"buildguard.yaml:3: builder.image: not a valid image reference: repository can only contain"}},
	{"malformed digest", doc(head, "base: registry.example/static@sha256:abc"),
		[]string{"buildguard.yaml:5: base: not a valid image reference: "}},
	{"url as image", doc(head, "base: https://registry.example/static"),
		[]string{"buildguard.yaml:5: base: not a valid image reference: "}},
	{"diverse image required", doc(head, "reproduce:", "  diverse:", "    - {}"),
		[]string{"buildguard.yaml:7: reproduce.diverse[0].image: required"}},
	{"diverse same as builder", doc(head, "reproduce: {diverse: [{image: golang:1.26}]}"),
		[]string{"buildguard.yaml:5: reproduce.diverse[0].image: is builder.image: a diverse builder must be an independent image"}},
	{"publish with digest", doc(head, "publish: {image: registry.example/app@"+digest+"}"),
		[]string{"buildguard.yaml:5: publish.image: must not carry a digest"}},
	{"publish with tag and digest", doc(head, "publish: {image: registry.example/app:v1@"+digest+"}"),
		[]string{"buildguard.yaml:5: publish.image: must not carry a digest"}},
	{"publish config without a base", doc(head, "publish: {image: registry.example/app:v1, cmd: [serve]}"),
		[]string{"buildguard.yaml:5: publish.cmd: needs base: without a base the output is pushed as an OCI artifact"}},
	{"publish config without an image", doc(head, "base: static@"+digest, "publish: {user: nonroot}"),
		[]string{"buildguard.yaml:6: publish.user: is set but publish.image is not"}},
	{"bad publish config", doc(head, "base: static@"+digest, "publish:", "  image: registry.example/app:v1",
		"  entrypoint: ['', x]", "  env: {1BAD: x, GOOD: y}", "  workdir: app/", "  user: 'root; rm'", "  labels: {'a b': x}"),
		[]string{
			"buildguard.yaml:8: publish.entrypoint[0]: must not be empty: it is the program to run",
			`buildguard.yaml:9: publish.env["1BAD"]: invalid variable name "1BAD"`,
			`buildguard.yaml:10: publish.workdir: want an absolute path in the image, such as /app, got "app/"`,
			`buildguard.yaml:11: publish.user: want a user name or uid, optionally :group or :gid (such as 65532 or nonroot:nonroot), got "root; rm"`,
			`buildguard.yaml:12: publish.labels["a b"]: invalid label key "a b"`,
		}},
	{"unclean publish workdir", doc(head, "base: static@"+digest, "publish: {image: r.example/app:v1, workdir: /app/../etc}"),
		[]string{`buildguard.yaml:6: publish.workdir: want a clean path (no trailing /, no . or .. elements), such as "/etc", got "/app/../etc"`}},
	{"cmd without entrypoint", doc(head, "base: static@"+digest, "publish: {image: r.example/app:v1, cmd: ['']}"),
		[]string{"buildguard.yaml:6: publish.cmd[0]: must not be empty: without an entrypoint it is the program to run"}},
	{"identity without issuer", doc(head, "trust:", "  identities:", "    - {subject: x}"),
		[]string{"buildguard.yaml:7: trust.identities[0]: needs an issuer or issuerRegExp"}},
	{"identity without subject", doc(head, "trust:", "  identities:", "    - {issuerRegExp: x}"),
		[]string{"buildguard.yaml:7: trust.identities[0]: needs a subject or subjectRegExp"}},
	{"bad regexp", doc(head, "trust:", "  identities:", "    - issuer: x", "      subjectRegExp: '(['"),
		[]string{"buildguard.yaml:8: trust.identities[0].subjectRegExp: invalid regular expression: "}},
	{"empty key path", doc(head, "trust: {keys: ['']}"),
		[]string{"buildguard.yaml:5: trust.keys[0]: must not be empty"}},
	{"rekor not http", doc(head, "trust: {rekor: {url: 'ftp://rekor.example'}}"),
		[]string{`buildguard.yaml:5: trust.rekor.url: want empty (offline) or an http(s) URL such as https://rekor.example, got "ftp://rekor.example"`}},
	{"rekor without host", doc(head, "trust: {rekor: {url: 'https://'}}"),
		[]string{`buildguard.yaml:5: trust.rekor.url: want empty (offline) or an http(s) URL`}},
	{"rekor not a url", doc(head, "trust: {rekor: {url: rekor.example}}"),
		[]string{`buildguard.yaml:5: trust.rekor.url: want empty (offline) or an http(s) URL`}},
	{"ignore tlog and rekor", doc(head, "trust:", "  insecureIgnoreTlog: true", "  rekor: {url: 'https://rekor.example'}"),
		[]string{"buildguard.yaml:6: trust.insecureIgnoreTlog: conflicts with trust.rekor.url"}},
	{"rules", doc(head, "policy:", "  rules:", "    - {name: a, expr: 'true'}", "    - {name: a, expr: 'false'}", "    - {expr: 'true'}", "    - {name: c, expr: ' '}"),
		[]string{
			`buildguard.yaml:8: policy.rules[1].name: duplicate rule name "a" (also policy.rules[0])`,
			"buildguard.yaml:9: policy.rules[2].name: required",
			"buildguard.yaml:10: policy.rules[3].expr: required",
		}},
	{"empty and duplicate waivers", doc(head, "policy: {waive: [a, '', a]}"),
		[]string{"buildguard.yaml:5: policy.waive[1]: must not be empty", `buildguard.yaml:5: policy.waive[2]: duplicate "a"`}},

	// The file as a whole.
	{"empty file", []byte(""), []string{`buildguard.yaml: empty file: want a configuration starting with "apiVersion: buildguard/v1"`}},
	{"only comments", doc("# nothing", "# here"), []string{"buildguard.yaml: empty file"}},
	{"null document", doc("---"), []string{`buildguard.yaml: empty document: want a configuration starting with "apiVersion: buildguard/v1"`}},
	{"scalar document", doc("buildguard"), []string{`buildguard.yaml:1: want a mapping starting with "apiVersion: buildguard/v1", got a string`}},
	{"two documents", doc(head, "---", "apiVersion: buildguard/v1"),
		[]string{"buildguard.yaml:5: a second YAML document: a configuration file holds exactly one"}},
	{"syntax error in flow", doc(head, "  env: {A: [}"), []string{"buildguard.yaml:5: invalid YAML: did not find expected node content (in the block starting on this line)"}},
	{"syntax error in block", doc(head, "  env:", "    A: x", "   B: y"), []string{"buildguard.yaml:3: invalid YAML: did not find expected key (in the block starting on this line)"}},
	{"scanner error", doc(head, "base: x: y"), []string{"buildguard.yaml:5: invalid YAML: mapping values are not allowed in this context"}},
	{"tab indentation", doc(head, "\tbase: x"), []string{"buildguard.yaml:5: invalid YAML: "}},
	{"missing apiVersion", doc("builder:", "  image: golang:1.26", "  command: [go]"),
		[]string{`buildguard.yaml: apiVersion: required: start the file with "apiVersion: buildguard/v1"`}},
	{"other apiVersion stops there", doc("apiVersion: buildguard/v2", "builder:", "  image: golang:1.26", "  sandbox: strict"),
		[]string{`buildguard.yaml:1: apiVersion: unsupported version "buildguard/v2": this buildguard reads buildguard/v1`}},
	{"apiVersion not a string", doc("apiVersion: 1", "builder: {image: golang:1.26, command: [go]}"),
		[]string{`buildguard.yaml:1: apiVersion: unsupported version "1": this buildguard reads buildguard/v1`}},

	// Several problems at once, sorted by line although validation
	// finds the image problem after the walk finds the others.
	{"all problems, sorted", doc("apiVersion: buildguard/v1", "builder:", "  image: Bad:Ref", "  command: go", "  imagee: x", "reproduce:", "  runs: 0", "extra: 1"),
		[]string{
			"buildguard.yaml:3: builder.image: not a valid image reference",
			"buildguard.yaml:4: builder.command: want a list of strings, got a string",
			`buildguard.yaml:5: builder.imagee: unknown field; did you mean "image"?`,
			"buildguard.yaml:7: reproduce.runs: must be at least 1",
			"buildguard.yaml:8: extra: unknown field",
		}},
}

func TestProblems(t *testing.T) {
	for _, tc := range problemCases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Parse(tc.yaml, "buildguard.yaml")
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", c)
			}
			assertConfigError(t, err)
			got := strings.Split(err.Error(), "\n")
			if len(got) != len(tc.want) {
				t.Fatalf("got %d problems, want %d:\n%s", len(got), len(tc.want), err)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tc.want[i]) {
					t.Errorf("problem %d:\n got %s\nwant %s...", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestTooManyProblems(t *testing.T) {
	lines := []string{head}
	for i := range 150 {
		lines = append(lines, "x"+strings.Repeat("y", i)+": 1")
	}
	_, err := config.Parse(doc(lines...), "buildguard.yaml")
	assertConfigError(t, err)
	got := strings.Split(err.Error(), "\n")
	if len(got) != 101 || got[100] != "buildguard.yaml: too many problems: 50 more not shown" {
		t.Errorf("got %d problems, last %q", len(got), got[len(got)-1])
	}
}

// TestPublishImageConfig: the image config fields of publish are read as
// written.
func TestPublishImageConfig(t *testing.T) {
	c, err := config.Parse(doc(head, "base: static@"+digest, "publish:", "  image: registry.example/app:v1",
		"  entrypoint: [/app, --serve]", "  cmd: [--port, '8080']", "  env: {TZ: UTC}", "  workdir: /srv",
		"  user: '65532:65532'", "  labels: {org.example.team: platform}"), "buildguard.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p := c.Publish
	if strings.Join(p.Entrypoint, " ") != "/app --serve" || strings.Join(p.Cmd, " ") != "--port 8080" || p.Env["TZ"] != "UTC" ||
		p.Workdir != "/srv" || p.User != "65532:65532" || p.Labels["org.example.team"] != "platform" || !p.SetsImageConfig() {
		t.Errorf("publish = %+v", p)
	}
}
