package reproduce

import (
	"fmt"
	"slices"

	"github.com/buildguard/buildguard/builder"
)

// The variations, by the names buildguard.yaml's reproduce.variations uses.
const (
	VarPath       = "path"
	VarTimezone   = "timezone"
	VarLocale     = "locale"
	VarUmask      = "umask"
	VarHostname   = "hostname"
	VarDomainname = "domainname"
	VarUID        = "uid"
	VarEnvOrder   = "env-order"
	VarExtraEnv   = "extra-env"
	VarTime       = "time"
)

// AllVariations lists every variation in the order they are applied.
func AllVariations() []string {
	return []string{VarPath, VarTimezone, VarLocale, VarUmask, VarHostname, VarDomainname, VarUID, VarEnvOrder, VarExtraEnv, VarTime}
}

// The values a varied run uses. They are fixed, so that a report names the
// same values every time; each is as far as practical from the control's.
const (
	variedWorkdir    = "/buildguard-varied/source-tree"
	variedTZ         = "BGV-14" // POSIX TZ: 14 hours east of UTC, needs no tzdata
	variedLocale     = "fr_FR.UTF-8"
	variedHostname   = "varied-host"
	variedDomainname = "varied.example"
	variedUmask      = 0o002
	variedUID        = 1000
	variedExtraName  = "BUILDGUARD_UNRELATED"
	variedExtraValue = "1"
)

// TimeNote says how the time variation is applied.
const TimeNote = "time: runs are not under a fake clock; the natural time between runs stands in for the time variation"

// checkVariations refuses unknown or repeated names.
func checkVariations(names []string) error {
	seen := map[string]bool{}
	for _, n := range names {
		if !slices.Contains(AllVariations(), n) {
			return fmt.Errorf("unknown variation %q (the variations are: %v)", n, AllVariations())
		}
		if seen[n] {
			return fmt.Errorf("variation %q listed twice", n)
		}
		seen[n] = true
	}
	return nil
}

// vary returns a copy of the control step s with the named variations
// applied.
func vary(s builder.Step, names []string) builder.Step {
	env := make(map[string]string, len(s.Env)+3)
	for k, v := range s.Env {
		env[k] = v
	}
	s.Env = env
	for _, n := range names {
		switch n {
		case VarPath:
			s.Workdir = variedWorkdir
		case VarTimezone:
			s.Env["TZ"] = variedTZ
		case VarLocale:
			s.Env["LANG"], s.Env["LC_ALL"] = variedLocale, variedLocale
		case VarUmask:
			u := uint32(variedUmask)
			s.Sandbox.Umask = &u
		case VarHostname:
			s.Sandbox.Hostname = variedHostname
		case VarDomainname:
			s.Sandbox.Domainname = variedDomainname
		case VarUID:
			s.Sandbox.UID, s.Sandbox.GID = variedUID, variedUID
		case VarEnvOrder:
			s.Sandbox.ReverseEnv = true
		case VarExtraEnv:
			s.Env[variedExtraName] = variedExtraValue
		case VarTime:
			// See TimeNote: the runs' natural time difference stands in.
		}
	}
	return s
}
