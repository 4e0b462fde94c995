// Package compat checks that Switchyard's scheduler works with a Marathon
// client nobody here wrote: github.com/gambol99/go-marathon v0.7.1 (the
// only version the Go module proxy serves). It is its own module so that
// the client stays out of the main module; run it with .ci/compat.sh.
package compat
