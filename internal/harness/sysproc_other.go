//go:build unix && !linux

package harness

import "syscall"

// sysProcAttr puts a child in its own process group, so that Stop can kill
// everything it spawned.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
