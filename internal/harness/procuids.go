package harness

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
)

// ProcessUIDs returns the ids of the Uid: line of /proc/PID/status (real,
// effective, saved, file system) of each host process whose command line
// holds marker: how a test sees which host user a sandboxed build runs as.
func ProcessUIDs(marker string) []string {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var uids []string
	for _, e := range ents {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte(marker)) {
			continue
		}
		status, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(status), "\n") {
			if f, ok := strings.CutPrefix(l, "Uid:"); ok {
				uids = append(uids, strings.Fields(f)...)
			}
		}
	}
	return uids
}
