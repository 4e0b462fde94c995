package cliutil

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// version is set at link time, e.g.
//
//	go build -ldflags "-X github.com/switchyard/switchyard/cmd/internal/cliutil.version=1.2.0" ./cmd/lb
//
// .ci/images.sh does so with the image tag. Left empty, Version falls back
// to the module version Go recorded in the binary.
var version string

// Version describes the running binary: the link-time version (or the
// module version, "(devel)" for a plain go build), then the commit, its
// time and whether the tree had local changes, as recorded by the Go
// toolchain, and the Go release. For example
//
//	1.2.0 (commit 1f2e3d4c5b6a, 2026-12-05T12:00:00Z, modified; go1.24.2)
func Version() string {
	bi, _ := debug.ReadBuildInfo()
	return versionString(version, bi)
}

// versionString is Version for given inputs; bi may be nil.
func versionString(linked string, bi *debug.BuildInfo) string {
	v := linked
	if v == "" && bi != nil {
		v = bi.Main.Version
	}
	if v == "" {
		v = "unknown"
	}
	if bi == nil {
		return v
	}
	var details []string
	var rev, when string
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev != "" {
		details = append(details, "commit "+rev[:min(12, len(rev))])
	}
	if when != "" {
		details = append(details, when)
	}
	if modified {
		details = append(details, "modified")
	}
	out := strings.Join(details, ", ")
	if bi.GoVersion != "" {
		if out != "" {
			out += "; "
		}
		out += bi.GoVersion
	}
	if out == "" {
		return v
	}
	return fmt.Sprintf("%s (%s)", v, out)
}
