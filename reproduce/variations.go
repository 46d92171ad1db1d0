package reproduce

import (
	"fmt"
	"slices"
	"time"

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

// VariedClockOffset is how far ahead of the real clock a run varying the
// time sees the wall clock, where libfaketime reaches: more than a year, a
// month, a day, an hour, a minute and a few seconds, so that a stamp at any
// of those resolutions differs.
const VariedClockOffset = 397*24*time.Hour + time.Hour + time.Minute + 7*time.Second

// variedClockText is VariedClockOffset as a reader says it.
const variedClockText = "397 days 1 hour 1 minute 7 seconds"

// DefaultStagger is how long after the control run started a run varying
// the time starts at the earliest: more than a second, so that a stamp at
// second resolution differs even where no fake clock reaches (static
// programs, Go's clock, images without glibc).
const DefaultStagger = 2 * time.Second

// Time mechanisms, as runs[].mechanisms names them.
const (
	MechLibfaketime = "libfaketime+stagger"
	MechStagger     = "stagger"
)

// mechanisms are how each variation reaches a build, by name; time's is
// decided per run (MechLibfaketime or MechStagger).
var mechanisms = map[string]string{
	VarPath:       "workdir",
	VarTimezone:   "TZ",
	VarLocale:     "LANG, LC_ALL",
	VarUmask:      "umask",
	VarHostname:   "uts namespace",
	VarDomainname: "uts namespace",
	VarUID:        "uid",
	VarEnvOrder:   "environment order",
	VarExtraEnv:   "environment",
}

// effect says what a variation changed in a varied run, beside the
// control's step, and what a build that depends on it usually does, with
// the fix: the explanation a failure or mismatch under it is given.
func effect(name string, control builder.Step) (changed, cause string) {
	switch name {
	case VarPath:
		return fmt.Sprintf("the source was at %s instead of %s", variedWorkdir, workdirOf(control)),
			"the build names its source directory by absolute path; use paths relative to the workdir"
	case VarTimezone:
		return fmt.Sprintf("TZ was %s (14 hours east of UTC)", variedTZ),
			"the build depends on the local time zone; format times in UTC"
	case VarLocale:
		return fmt.Sprintf("LANG and LC_ALL were %s", variedLocale),
			"the build depends on the locale (messages, sorting, number or date formats); set LC_ALL=C.UTF-8 for the steps that do"
	case VarUmask:
		return fmt.Sprintf("the umask was %03o instead of 022", variedUmask),
			"the build depends on the umask; set file modes explicitly"
	case VarHostname:
		return fmt.Sprintf("the host name was %s instead of %s", variedHostname, builder.Hostname),
			"the build depends on the host name"
	case VarDomainname:
		return fmt.Sprintf("the domain name was %s instead of none", variedDomainname),
			"the build depends on the domain name"
	case VarUID:
		return fmt.Sprintf("the build ran as uid %d instead of 0", variedUID),
			"the build depends on the user it runs as (it needs root, or records its owner)"
	case VarEnvOrder:
		return "the environment was in reverse order",
			"the build depends on the order of the environment (it records the whole environment)"
	case VarExtraEnv:
		return fmt.Sprintf("%s=%s was set", variedExtraName, variedExtraValue),
			"the build depends on an unrelated environment variable (it records the whole environment)"
	case VarTime:
		return fmt.Sprintf("the clock was %s ahead and the start %s later", variedClockText, DefaultStagger),
			"the build depends on the current date or time; use SOURCE_DATE_EPOCH"
	}
	return "several variations were applied together", "the build depends on their combination"
}

// VariationEffect is the sentence that explains what the named variation
// changed beside the control step and what to do about it; a name that is
// not one variation (a set found together by bisection) gets a generic
// sentence.
func VariationEffect(name string, control builder.Step) string {
	changed, cause := effect(name, control)
	return fmt.Sprintf("(%s): %s", changed, cause)
}

func workdirOf(s builder.Step) string {
	if s.Workdir == "" {
		return builder.DefaultWorkdir
	}
	return s.Workdir
}

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
			// A fake clock where libfaketime reaches; the run's start is
			// staggered too (see reproducer.stagger).
			s.Sandbox.ClockOffset = VariedClockOffset
		}
	}
	return s
}
