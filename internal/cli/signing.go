package cli

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/buildguard/buildguard/attest"
	"github.com/buildguard/buildguard/config"
	"github.com/buildguard/buildguard/internal/exitcode"
)

// SigningOptions are the flags of every command that signs what it
// writes (--signing-key, --signing-config). Each one given replaces its
// field of buildguard.yaml's signing section.
type SigningOptions struct {
	// Key is a cosign key file (password in $COSIGN_PASSWORD) or an
	// unencrypted PKCS#8 PEM; empty: nothing is signed.
	Key string
	// Config is a Sigstore signing config (cosign v3's format): every
	// signature is logged in the Rekor it names.
	Config string
	// FlagsOnly: the command reads no buildguard.yaml (rebuild), so its
	// errors name the flags alone.
	FlagsOnly bool
}

// signingConfigHelp is the flag's help, and the long help's paragraph.
const signingConfigHelp = "log every signature in the Rekor that the signing config `FILE` names (cosign's format, as `cosign signing-config create` writes it); replaces signing.config"

// AddFlags registers --signing-key and --signing-config.
func (o *SigningOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Key, "signing-key", "", "sign with the key `FILE` (cosign key, password in $COSIGN_PASSWORD, or PKCS#8 PEM); replaces signing.key")
	fs.StringVar(&o.Config, "signing-config", "", signingConfigHelp)
}

// Signer loads the signing key and signing config that the flags (where
// changed says they were given) or else cfg's signing section name: nil
// when no key is named. A signing config without a key, an unreadable
// key or config, and a config naming no log buildguard can write to are
// usage errors (exit 2): nothing was attempted. warn receives what the
// config names that is not used.
func (o *SigningOptions) Signer(cfg config.Signing, changed func(string) bool, warn func(string)) (*attest.Signer, error) {
	key, scPath := cfg.Key.Resolved, cfg.Config.Resolved
	if changed("signing-key") {
		key = o.Key
	}
	if changed("signing-config") {
		scPath = o.Config
	}
	if key == "" {
		if scPath != "" {
			hint := "--signing-key FILE or signing.key"
			if o.FlagsOnly {
				hint = "--signing-key FILE"
			}
			return nil, exitcode.UsageErrorf("the signing config %s needs a signing key (%s): buildguard signs with a key, keyless signing is not supported", scPath, hint)
		}
		return nil, nil
	}
	s, err := attest.LoadSigner(key, []byte(os.Getenv("COSIGN_PASSWORD")))
	if err != nil {
		return nil, exitcode.WithCode(exitcode.Usage, err)
	}
	if scPath == "" {
		return s, nil
	}
	sc, err := attest.LoadSigningConfig(scPath, time.Now())
	if err != nil {
		return nil, exitcode.WithCode(exitcode.Usage, err)
	}
	for _, what := range sc.Ignored {
		warn(fmt.Sprintf("signing config %s: %s not used (buildguard signs with its key, and adds no signed timestamp: the Rekor inclusion proof is what a verifier requires)", scPath, what))
	}
	if s, err = s.WithLogs(sc); err != nil {
		return nil, exitcode.WithCode(exitcode.Usage, err)
	}
	return s, nil
}
