package ddc

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Debian is a Debian root file system that mmdebstrap makes as a tar from
// the Debian archive: the base layer of the chain's builder images, which
// gives make.bash its bash, coreutils and unzip.
type Debian struct {
	// Suite is the Debian release, e.g. "bookworm".
	Suite string
	// Mirror is the archive, e.g. "http://deb.debian.org/debian"; apt
	// checks what it serves against Debian's archive keys.
	Mirror string
	// Packages are installed over the minbase variant.
	Packages []string
}

// The two root file systems of the chain: with gccgo-12 for the first
// stage, and without it for the stages built with Go.
var (
	GccgoDebian = Debian{Suite: "bookworm", Mirror: "http://deb.debian.org/debian", Packages: []string{"gccgo-12", "unzip"}}
	BaseDebian  = Debian{Suite: "bookworm", Mirror: "http://deb.debian.org/debian", Packages: []string{"unzip"}}
)

// DebianEpoch is the SOURCE_DATE_EPOCH mmdebstrap is run with, so that the
// same packages give the same tar.
const DebianEpoch = "1700000000"

// Args are mmdebstrap's arguments to write the root file system to out.
func (d Debian) Args(out string) []string {
	return []string{"--variant=minbase", "--format=tar", "--include=" + strings.Join(d.Packages, ","), d.Suite, out, d.Mirror}
}

// Key names the tar in the cache. The archive changes as Debian publishes
// updates, so the same key may give other packages on another day: the
// tar is kept, and its digest (the layer's) is what the builder image and
// every later key record.
func (d Debian) Key() string {
	h := sha256.Sum256([]byte(strings.Join(d.Args("OUT"), "\x00") + "\x00" + DebianEpoch))
	return hex.EncodeToString(h[:8])
}

// DebianPath is PATH in a Debian builder image; a stage's toolchain at
// /usr/local/go comes first.
const DebianPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
