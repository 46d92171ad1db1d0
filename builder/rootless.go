package builder

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
)

// RootlessEnv carries, from an unprivileged buildguard to itself run again
// in its own user namespace (internal/rootless), how that namespace maps
// ids. It is believed only inside a user namespace that is not the
// initial one: as real root it means nothing.
const RootlessEnv = "BUILDGUARD_ROOTLESS"

// Rootless is an unprivileged user's namespace: its 0 is the user (UID,
// GID on the host) and, in ranged mode, its 1..Count are the user's
// subordinate ids from SubUID and SubGID.
type Rootless struct {
	Mode           string `json:"mode"` // IDMapRanged or IDMapSingle
	UID, GID       uint32
	SubUID, SubGID uint32
	Count          uint32
	// Why says why the mode is single.
	Why string `json:"why,omitempty"`
}

// Encode is the value of RootlessEnv.
func (r Rootless) Encode() string {
	b, _ := json.Marshal(r) // plain fields: never fails
	return string(b)
}

var rootless struct {
	once sync.Once
	r    *Rootless
}

// RootlessMode returns the namespace this process runs in as an
// unprivileged user's buildguard, or nil when it runs as real root (or
// outside internal/rootless's namespace).
func RootlessMode() *Rootless {
	rootless.once.Do(func() {
		rootless.r = parseRootless(os.Getenv(RootlessEnv), inUserNamespace())
	})
	return rootless.r
}

// parseRootless reads RootlessEnv's value v, believed only when inNS (this
// process is outside the initial user namespace): as real root, a value
// planted in the environment must not make builds run as host root.
func parseRootless(v string, inNS bool) *Rootless {
	if v == "" || !inNS {
		return nil
	}
	var r Rootless
	if err := json.Unmarshal([]byte(v), &r); err != nil || (r.Mode != IDMapRanged && r.Mode != IDMapSingle) {
		return nil
	}
	if r.Mode == IDMapRanged && r.Count < MinSubIDs {
		return nil
	}
	return &r
}

// inUserNamespace reports whether this process is outside the initial user
// namespace, whose uid_map maps every id to itself.
func inUserNamespace() bool {
	b, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return false
	}
	return strings.Join(strings.Fields(string(b)), " ") != "0 0 4294967295"
}

// rootlessIDMap is the mapping builds run in inside the namespace: the
// subordinate ids (its 1..Count), or the user alone (its 0).
func (r *Rootless) idMap() IDMap {
	if r.Mode == IDMapSingle {
		return IDMap{UID: 0, GID: 0, Size: 1, Mode: IDMapSingle,
			Source: fmt.Sprintf("rootless, the invoking user (%d:%d) alone: %s", r.UID, r.GID, r.Why)}
	}
	return IDMap{UID: 1, GID: 1, Size: r.Count, Mode: IDMapRanged,
		Source: fmt.Sprintf("rootless, the invoking user's subordinate ids (uid %d-%d, gid %d-%d)",
			r.SubUID, uint64(r.SubUID)+uint64(r.Count)-1, r.SubGID, uint64(r.SubGID)+uint64(r.Count)-1)}
}
