package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

// Path is a file-system path from the configuration. Text is what the file
// says; Resolved is Text made absolute against the directory of the file (or,
// for a path given on the command line, the working directory). Use Resolved
// to open the file; Text is what reports show, so that they do not depend on
// where the project is checked out.
type Path struct {
	Text     string
	Resolved string
}

// ResolvePath returns text as a Path resolved against dir. An empty text gives
// the zero Path; an absolute text is only cleaned.
func ResolvePath(text, dir string) Path {
	if text == "" {
		return Path{}
	}
	if filepath.IsAbs(text) {
		return Path{Text: text, Resolved: filepath.Clean(text)}
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return Path{Text: text, Resolved: filepath.Join(dir, text)}
}

// String returns the resolved path, or the text if the path was never
// resolved.
func (p Path) String() string {
	if p.Resolved != "" {
		return p.Resolved
	}
	return p.Text
}

// MarshalJSON encodes the path as written (Text).
func (p Path) MarshalJSON() ([]byte, error) { return json.Marshal(p.Text) }

// MarshalYAML encodes the path as written (Text).
func (p Path) MarshalYAML() (any, error) { return p.Text, nil }

// UnmarshalYAML reads the text of a path; it is resolved by Parse.
func (p *Path) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return errors.New("want a path string")
	}
	*p = Path{Text: n.Value}
	return nil
}

// Duration is a time.Duration written as a Go duration string ("10m",
// "1h30m") in YAML and JSON.
type Duration time.Duration

// String returns the duration in Go's canonical form, such as "10m0s".
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON encodes the duration as its canonical string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// MarshalYAML encodes the duration as its canonical string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalYAML reads a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := parseDuration(n)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

const durationWant = "a duration such as 30m or 1h30m"

func parseDuration(n *yaml.Node) (Duration, error) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		return 0, fmt.Errorf("want %s, got %s", durationWant, describeNode(n))
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return 0, fmt.Errorf("want %s, got %q", durationWant, n.Value)
	}
	return Duration(v), nil
}

// Quantity is a number of bytes written as a Kubernetes-style quantity: plain
// bytes ("1048576"), a binary suffix ("512Mi", "4Gi": Ki, Mi, Gi, Ti, Pi, Ei),
// a decimal suffix ("1G": k, M, G, T, P, E) or a decimal exponent ("1e9").
// Fractions are allowed when the result is a whole number of bytes ("1.5Gi").
// It is encoded as a plain number of bytes.
type Quantity int64

// UnmarshalYAML reads a quantity.
func (q *Quantity) UnmarshalYAML(n *yaml.Node) error {
	v, err := parseQuantityNode(n)
	if err != nil {
		return err
	}
	*q = v
	return nil
}

const quantityWant = "a quantity such as 512Mi, 4Gi, 1G or a number of bytes"

func parseQuantityNode(n *yaml.Node) (Quantity, error) {
	if tag := n.ShortTag(); n.Kind != yaml.ScalarNode || (tag != "!!str" && tag != "!!int") {
		return 0, fmt.Errorf("want %s, got %s", quantityWant, describeNode(n))
	}
	v, err := ParseQuantity(n.Value)
	if err != nil {
		return 0, fmt.Errorf("want %s, got %q: %w", quantityWant, n.Value, err)
	}
	return v, nil
}

var quantityRE = regexp.MustCompile(`^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(?:[eE]([+-]?[0-9]{1,3})|(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E))?$`)

var quantitySuffix = map[string]int64{
	"": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
	"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "Pi": 1 << 50, "Ei": 1 << 60,
}

// ParseQuantity parses a Kubernetes-style quantity of bytes (see Quantity).
func ParseQuantity(s string) (Quantity, error) {
	m := quantityRE.FindStringSubmatch(s)
	if m == nil {
		if strings.HasSuffix(s, "B") || strings.HasSuffix(s, "b") {
			return 0, errors.New("units take no B: write Gi or G, not GiB or GB")
		}
		return 0, errors.New("malformed quantity")
	}
	num, ok := new(big.Rat).SetString(m[1])
	if !ok {
		return 0, errors.New("malformed quantity")
	}
	if m[2] != "" {
		exp, err := strconv.Atoi(m[2])
		if err != nil || exp < -18 || exp > 18 {
			return 0, errors.New("exponent out of range")
		}
		pow := new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(max(exp, -exp))), nil))
		if exp < 0 {
			pow.Inv(pow)
		}
		num.Mul(num, pow)
	} else {
		num.Mul(num, new(big.Rat).SetInt64(quantitySuffix[m[3]]))
	}
	if !num.IsInt() {
		return 0, errors.New("not a whole number of bytes")
	}
	if !num.Num().IsInt64() {
		return 0, errors.New("out of range")
	}
	return Quantity(num.Num().Int64()), nil
}

// Runtime names the OCI runtime that runs the build (builder.runtime).
type Runtime string

// The runtimes buildguard knows. RuntimeAuto picks crun, then runc, then bwrap.
const (
	RuntimeAuto   Runtime = "auto"
	RuntimeCrun   Runtime = "crun"
	RuntimeRunc   Runtime = "runc"
	RuntimeRunsc  Runtime = "runsc" // gVisor; only when named
	RuntimeBwrap  Runtime = "bwrap"
	RuntimeDocker Runtime = "docker"
	RuntimePodman Runtime = "podman"
)

// Runtimes returns every valid Runtime, RuntimeAuto first.
func Runtimes() []Runtime {
	return []Runtime{RuntimeAuto, RuntimeCrun, RuntimeRunc, RuntimeRunsc, RuntimeBwrap, RuntimeDocker, RuntimePodman}
}

// Variation names one difference between a reproducibility run and the
// control run (reproduce.variations).
type Variation string

// The variations buildguard applies.
const (
	VariationPath       Variation = "path"       // a different build directory
	VariationTimezone   Variation = "timezone"   // a different TZ
	VariationLocale     Variation = "locale"     // a different LANG/LC_ALL
	VariationUmask      Variation = "umask"      // a different umask
	VariationHostname   Variation = "hostname"   // a different host name
	VariationDomainname Variation = "domainname" // a different domain name
	VariationUID        Variation = "uid"        // a different user and group id
	VariationEnvOrder   Variation = "env-order"  // the environment in another order
	VariationExtraEnv   Variation = "extra-env"  // an extra, unrelated variable
	VariationTime       Variation = "time"       // a different clock
)

// Variations returns every Variation, in the order DESIGN.md lists them; it
// is the default of reproduce.variations.
func Variations() []Variation {
	return []Variation{VariationPath, VariationTimezone, VariationLocale, VariationUmask,
		VariationHostname, VariationDomainname, VariationUID, VariationEnvOrder,
		VariationExtraEnv, VariationTime}
}

// Role says what an image is used for in a build.
type Role string

// The roles of the images a build consumes.
const (
	RoleBuilder Role = "builder" // builder.image
	RoleDiverse Role = "diverse" // reproduce.diverse[].image
	RoleBase    Role = "base"    // base
)

// ImageRef is one image a build consumes, located in the configuration.
type ImageRef struct {
	Role  Role   `json:"role"`
	Ref   string `json:"ref"`   // the reference as written
	Field string `json:"field"` // the field path, such as "reproduce.diverse[0].image"
	Line  int    `json:"line"`  // 0 if unknown
}

// describeNode names the kind of a YAML node for "want X, got Y" messages.
func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	}
	switch tag := n.ShortTag(); tag {
	case "!!str":
		return "a string"
	case "!!int":
		return "an integer"
	case "!!float":
		return "a number"
	case "!!bool":
		return "a boolean"
	case "!!null":
		return "null"
	case "!!timestamp":
		return "a timestamp"
	default:
		return "a value tagged " + strings.TrimSpace(tag)
	}
}
