// Package cliutil holds what the Switchyard binaries (lb, scheduler,
// agent, switchyard) share on their command lines: the --version string,
// the --log-level words and the log handler that keeps a sub-logger's
// attributes from repeating its parent's.
//
// Only packages under cmd/ import it (cmd/switchyard/deps_test.go).
package cliutil
