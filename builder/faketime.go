package builder

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A shifted clock (Sandbox.ClockOffset) reaches a build through libfaketime:
// the host's library is bound read-only into the sandbox (Step.Inputs) and
// named by LD_PRELOAD, so that every dynamically linked program the build
// runs reads a wall clock moved by the offset. The image's own dynamic
// loader loads it, so it is preloaded only into an image whose glibc can
// load the host's build of it: a loader for the library's architecture at
// its ABI path, and every library it needs defining every symbol version it
// needs. Anything else (a static or musl image, an older glibc) would fail
// to start every dynamic program, so there the clock is left alone and the
// result says why.
//
// What libfaketime cannot reach, even in a glibc image: statically linked
// programs (a static busybox, most Go binaries) and programs that read the
// clock through the vDSO without libc (Go's runtime, even when linked
// dynamically). The reproduce package staggers the start of a varied run
// for those.

// LibfaketimeDest is where a build with a shifted clock sees libfaketime.
// It lies outside every directory a build is expected to list.
const LibfaketimeDest = "/.buildguard/faketime/libfaketime.so.1"

// ClockLibfaketime is Result.FakeClock when libfaketime was preloaded.
const ClockLibfaketime = "libfaketime"

// ErrNoLibfaketime says that the host has no libfaketime to bring into a
// build whose clock is to be shifted.
var ErrNoLibfaketime = errors.New("libfaketime is not installed on this host (Debian, Ubuntu: apt-get install faketime libfaketime; Fedora: dnf install libfaketime)")

// libfaketimePaths are where distributions install libfaketime, for this
// machine's architecture, in the order they are tried. A variable so that
// tests can stand in a host without it.
var libfaketimePaths = func() []string {
	var ps []string
	if t := multiarch[hostMachine()]; t != "" {
		ps = append(ps, "/usr/lib/"+t+"/faketime/libfaketime.so.1")
	}
	return append(ps, "/usr/lib64/faketime/libfaketime.so.1", "/usr/lib/faketime/libfaketime.so.1",
		"/usr/local/lib/faketime/libfaketime.so.1")
}()

// Libfaketime returns the host path of libfaketime (the single-threaded
// library, as faketime(1) uses by default), or ErrNoLibfaketime. It is the
// one place that looks for it.
func Libfaketime() (string, error) {
	for _, p := range libfaketimePaths {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w (looked in %s)", ErrNoLibfaketime, strings.Join(libfaketimePaths, ", "))
}

// FakeTime is libfaketime's FAKETIME for a clock shifted by d: a relative
// offset in whole seconds ("+34304467"), which libfaketime adds to the real
// clock, so that the clock still runs.
func FakeTime(d time.Duration) string {
	s := int64(d / time.Second)
	if s < 0 {
		return strconv.FormatInt(s, 10)
	}
	return "+" + strconv.FormatInt(s, 10)
}

// glibcLoaders are the glibc dynamic loaders by ELF machine, at the paths
// the ABIs fix; multiarch the Debian library directories.
var (
	glibcLoaders = map[elf.Machine]string{
		elf.EM_X86_64:  "/lib64/ld-linux-x86-64.so.2",
		elf.EM_AARCH64: "/lib/ld-linux-aarch64.so.1",
		elf.EM_386:     "/lib/ld-linux.so.2",
		elf.EM_PPC64:   "/lib64/ld64.so.2",
		elf.EM_S390:    "/lib/ld64.so.1",
		elf.EM_RISCV:   "/lib/ld-linux-riscv64-lp64d.so.1",
	}
	multiarch = map[elf.Machine]string{
		elf.EM_X86_64:  "x86_64-linux-gnu",
		elf.EM_AARCH64: "aarch64-linux-gnu",
		elf.EM_386:     "i386-linux-gnu",
		elf.EM_PPC64:   "powerpc64le-linux-gnu",
		elf.EM_S390:    "s390x-linux-gnu",
		elf.EM_RISCV:   "riscv64-linux-gnu",
	}
)

func hostMachine() elf.Machine {
	switch runtime.GOARCH {
	case "amd64":
		return elf.EM_X86_64
	case "arm64":
		return elf.EM_AARCH64
	case "386":
		return elf.EM_386
	case "ppc64le":
		return elf.EM_PPC64
	case "s390x":
		return elf.EM_S390
	case "riscv64":
		return elf.EM_RISCV
	}
	return elf.EM_NONE
}

// maxELFBytes bounds a library of the image read to check that it can load
// libfaketime (glibc's libc.so.6 is about 2 MiB).
const maxELFBytes = 64 << 20

// CanPreload reports whether the image unpacked at rootfs has a glibc that
// can load the host library lib: nil when it can, otherwise why not (the
// sentence a note quotes).
func CanPreload(rootfs, lib string) error {
	hf, err := elf.Open(lib)
	if err != nil {
		return fmt.Errorf("reading %s: %w", lib, err)
	}
	defer hf.Close()
	loader, ok := glibcLoaders[hf.Machine]
	if !ok {
		return fmt.Errorf("%s is for %s, which buildguard knows no glibc loader for", lib, hf.Machine)
	}
	root, err := os.OpenRoot(rootfs)
	if err != nil {
		return err
	}
	defer root.Close()
	a := newApplier(root, Limits{}.withDefaults(), nil)
	if _, fi, ok := resolveFile(a, loader); !ok || !fi.Mode().IsRegular() {
		return fmt.Errorf("the image has no glibc dynamic loader %s (a static or musl image)", loader)
	}
	needed, err := hf.ImportedLibraries()
	if err != nil {
		return fmt.Errorf("reading %s: %w", lib, err)
	}
	var vneeds []elf.DynamicVersionNeed
	if hf.SectionByType(elf.SHT_GNU_VERSYM) != nil {
		if vneeds, err = hf.DynamicVersionNeeds(); err != nil {
			return fmt.Errorf("reading the symbol versions %s needs: %w", lib, err)
		}
	}
	dirs := []string{"/lib64", "/usr/lib64", "/lib", "/usr/lib"}
	if t := multiarch[hf.Machine]; t != "" {
		dirs = append([]string{"/lib/" + t, "/usr/lib/" + t}, dirs...)
	}
	for _, name := range needed {
		var p string
		if name == path.Base(loader) {
			p = loader
		} else {
			for _, d := range dirs {
				if _, fi, ok := resolveFile(a, path.Join(d, name)); ok && fi.Mode().IsRegular() {
					p = path.Join(d, name)
					break
				}
			}
		}
		if p == "" {
			return fmt.Errorf("the image has no %s, which libfaketime needs (looked in %s)", name, strings.Join(dirs, ", "))
		}
		var want []string
		for _, vn := range vneeds {
			if vn.Name == name {
				for _, d := range vn.Needs {
					want = append(want, d.Dep)
				}
			}
		}
		if err := definesVersions(a, p, hf.Machine, want); err != nil {
			return fmt.Errorf("the image's %s cannot load the host's libfaketime: %w", p, err)
		}
	}
	return nil
}

// definesVersions checks that the image's library at p (absolute, in the
// image) is for machine and defines every symbol version in want.
func definesVersions(a *applier, p string, machine elf.Machine, want []string) (err error) {
	full, fi, ok := resolveFile(a, p)
	if !ok {
		return errors.New("missing")
	}
	if fi.Size() > maxELFBytes {
		return fmt.Errorf("larger than %d bytes", maxELFBytes)
	}
	f, err := a.root.Open(full)
	if err != nil {
		return err
	}
	defer f.Close()
	// The image is the adversary and debug/elf is not hardened against
	// every malformed file: a panic is an unreadable library.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("unreadable ELF file: %v", r)
		}
	}()
	ef, err := elf.NewFile(f)
	if err != nil {
		return err
	}
	defer ef.Close()
	if ef.Machine != machine {
		return fmt.Errorf("built for %s, not %s", ef.Machine, machine)
	}
	if len(want) == 0 {
		return nil
	}
	defs, err := ef.DynamicVersions()
	if err != nil {
		return fmt.Errorf("reading its symbol versions: %w", err)
	}
	var missing []string
	for _, w := range want {
		if !slices.ContainsFunc(defs, func(d elf.DynamicVersion) bool { return d.Name == w }) {
			missing = append(missing, w)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("it lacks the symbol versions %s (an older libc than the host's)", strings.Join(missing, ", "))
	}
	return nil
}

// withFakeClock returns s with its clock shifted by s.Sandbox.ClockOffset
// through libfaketime when the host has it and the image can load it: the
// library as an input, LD_PRELOAD, FAKETIME and
// FAKETIME_DONT_FAKE_MONOTONIC (so that timeouts and durations measured by
// build tools still hold). faked says whether it was; otherwise why says
// why not.
func (s Step) withFakeClock() (out Step, faked bool, why string) {
	lib, err := Libfaketime()
	if err != nil {
		return s, false, err.Error()
	}
	if err := CanPreload(s.Rootfs, lib); err != nil {
		return s, false, err.Error()
	}
	env := make(map[string]string, len(s.Env)+3)
	for k, v := range s.Env {
		env[k] = v
	}
	preload := LibfaketimeDest
	if p := env["LD_PRELOAD"]; p != "" {
		preload += ":" + p
	}
	env["LD_PRELOAD"] = preload
	env["FAKETIME"] = FakeTime(s.Sandbox.ClockOffset)
	env["FAKETIME_DONT_FAKE_MONOTONIC"] = "1"
	s.Env = env
	s.Inputs = append(slices.Clip(s.Inputs), Input{Source: lib, Destination: LibfaketimeDest})
	return s, true, ""
}
