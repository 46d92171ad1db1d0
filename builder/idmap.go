package builder

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"sync"
)

// The files that give a user its subordinate ids (shadow-utils, subuid(5)).
const (
	SubUIDFile = "/etc/subuid"
	SubGIDFile = "/etc/subgid"
)

// MinSubIDs is the fewest subordinate ids a ranged mapping may have: every
// id a Debian or Alpine image owns files with (nobody is 65534) and the
// uid variation's user fit in it.
const MinSubIDs = 65536

// ID mapping modes (IDMap.Mode).
const (
	// IDMapRanged maps ids 0..Size-1 inside to a range of subordinate ids
	// on the host: every owner in the image is kept.
	IDMapRanged = "ranged"
	// IDMapSingle maps the invoking user alone to 0 inside: every file of
	// the image belongs to it, other owners are lost, and a build cannot
	// run as another uid.
	IDMapSingle = "single"
)

// IDMap is the user namespace mapping a build runs in: uid and gid 0..Size-1
// inside are UID..UID+Size-1 and GID..GID+Size-1 on the host. The build's
// processes never hold a host id outside it, and never host root: a map
// whose range holds host id 0 is refused.
type IDMap struct {
	UID, GID uint32
	Size     uint32
	// Mode is IDMapRanged or IDMapSingle.
	Mode string
	// Source says where the range comes from ("/etc/subuid root:100000:65536").
	Source string
}

// HostUID and HostGID return the host ids of id inside the namespace.
func (m IDMap) HostUID(id uint32) uint32 { return m.UID + id }
func (m IDMap) HostGID(id uint32) uint32 { return m.GID + id }

// Contains reports whether uid and gid inside the namespace are mapped.
func (m IDMap) Contains(uid, gid uint32) bool { return uid < m.Size && gid < m.Size }

// String is the mapping as the report shows it: "0:100000:65536".
func (m IDMap) String() string {
	if m.UID == m.GID {
		return fmt.Sprintf("0:%d:%d", m.UID, m.Size)
	}
	return fmt.Sprintf("uid 0:%d:%d, gid 0:%d:%d", m.UID, m.Size, m.GID, m.Size)
}

// key is the mapping's part of a rootfs cache entry's name.
func (m IDMap) key() string {
	return fmt.Sprintf("ids-%d-%d-%d", m.UID, m.GID, m.Size)
}

func (m IDMap) validate() error {
	switch {
	case m.Size == 0:
		return errors.New("the id mapping maps no ids")
	case m.Mode == IDMapRanged && (m.UID == 0 || m.GID == 0):
		return fmt.Errorf("the id range %s holds host root: a build would be root on the host", m)
	case uint64(m.UID)+uint64(m.Size) > 1<<32-1 || uint64(m.GID)+uint64(m.Size) > 1<<32-1:
		return fmt.Errorf("the id range %s passes the largest id", m)
	}
	return nil
}

// ErrNoSubIDs is wrapped by HostIDMap's error when the invoking user has
// no subordinate id range to run builds in.
var ErrNoSubIDs = errors.New("no subordinate id range")

// SubIDRange is one line of /etc/subuid or /etc/subgid.
type SubIDRange struct {
	Start, Count uint32
}

// ParseSubIDs returns the first range of user (by name or numeric uid) in
// the contents of a subuid or subgid file that holds at least MinSubIDs
// ids or, when none does, its first range; and whether there is one.
// Malformed lines, and ranges of no ids, are skipped as shadow-utils
// skips them.
func ParseSubIDs(b []byte, name, uid string) (SubIDRange, bool) {
	var first SubIDRange
	found := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Split(strings.TrimSpace(sc.Text()), ":")
		if len(f) != 3 || (f[0] != name && f[0] != uid) || f[0] == "" {
			continue
		}
		start, err1 := strconv.ParseUint(f[1], 10, 32)
		count, err2 := strconv.ParseUint(f[2], 10, 32)
		if err1 != nil || err2 != nil || count == 0 {
			continue
		}
		r := SubIDRange{Start: uint32(start), Count: uint32(count)}
		if r.Count >= MinSubIDs {
			return r, true
		}
		if !found {
			first, found = r, true
		}
	}
	return first, found
}

// SubIDFix is the command that gives user a range of subordinate ids, for
// errors and doctor.
func SubIDFix(user string) string {
	return fmt.Sprintf("usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s "+
		"(or add the line %s:100000:65536 to %s and %s, with a range no other user has)", user, user, SubUIDFile, SubGIDFile)
}

var hostIDMap struct {
	once sync.Once
	m    IDMap
	err  error
}

// HostIDMap returns the mapping builds run in for this process's user: its
// first range in /etc/subuid and /etc/subgid (as root too: never a range
// of our own choosing, which could be another user's). The files are read
// once per process. In an unprivileged user's namespace (RootlessMode) it
// is that namespace's ids.
func HostIDMap() (IDMap, error) {
	hostIDMap.once.Do(func() {
		if r := RootlessMode(); r != nil {
			hostIDMap.m = r.idMap()
			return
		}
		hostIDMap.m, hostIDMap.err = readIDMap(os.ReadFile, os.Geteuid())
	})
	return hostIDMap.m, hostIDMap.err
}

// SubIDMap is the ranged mapping of uid's first subordinate id ranges of
// at least MinSubIDs ids, checked as HostIDMap checks root's; an error
// wrapping ErrNoSubIDs when it has none.
func SubIDMap(uid int) (IDMap, error) { return readIDMap(os.ReadFile, uid) }

// readIDMap is SubIDMap with its inputs given.
func readIDMap(readFile func(string) ([]byte, error), uid int) (IDMap, error) {
	name := strconv.Itoa(uid)
	if u, err := user.LookupId(name); err == nil {
		name = u.Username
	}
	var r [2]SubIDRange
	for i, file := range []string{SubUIDFile, SubGIDFile} {
		b, err := readFile(file)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return IDMap{}, fmt.Errorf("reading %s: %w", file, err)
		}
		rg, ok := ParseSubIDs(b, name, strconv.Itoa(uid))
		if !ok {
			return IDMap{}, fmt.Errorf("%w: %s has none in %s, and builds run in a user namespace mapped to one "+
				"(never with host ids: as root they would be host root); give it one: %s", ErrNoSubIDs, name, file, SubIDFix(name))
		}
		if rg.Count < MinSubIDs {
			return IDMap{}, fmt.Errorf("%w: %s has %d ids in %s, fewer than the %d an image's owners need; give it a larger range: %s",
				ErrNoSubIDs, name, rg.Count, file, MinSubIDs, SubIDFix(name))
		}
		r[i] = rg
	}
	m := IDMap{
		UID: r[0].Start, GID: r[1].Start, Size: min(r[0].Count, r[1].Count, MinSubIDs),
		Mode:   IDMapRanged,
		Source: fmt.Sprintf("%s %s:%d:%d, %s %s:%d:%d", SubUIDFile, name, r[0].Start, r[0].Count, SubGIDFile, name, r[1].Start, r[1].Count),
	}
	if err := m.validate(); err != nil {
		return IDMap{}, fmt.Errorf("%s: %w", m.Source, err)
	}
	if u := int64(uid); u >= int64(m.UID) && u-int64(m.UID) < int64(m.Size) {
		return IDMap{}, fmt.Errorf("%s: the range holds %s's own uid %d: a build could write as the invoking user", m.Source, name, uid)
	}
	return m, nil
}
