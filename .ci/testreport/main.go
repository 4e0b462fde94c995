// Command testreport reads `go test -json` events on stdin and prints what a
// person needs from a long test run: one line per package as `go test`
// prints it, the whole output of every failed test, every skipped test with
// its reason, and a closing "N passed, N failed, N skipped" line.
//
// It exits 1 when a test or package failed, or when any test was skipped
// because a prerequisite was missing (the helpers in haproxytest and the
// e2e harnesses say "prerequisite missing" when they skip): README's test
// command must run everything or fail, never pass by skipping.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Time        time.Time
	Action      string
	Package     string
	ImportPath  string
	Test        string
	Elapsed     float64
	Output      string
	FailedBuild string
}

type testKey struct{ pkg, test string }

type report struct {
	out      map[testKey]*strings.Builder
	skips    []skip
	failed   []testKey
	pkgLines []string
	passed   int
	nFailed  int
	nSkipped int
	pkgFail  int
	build    strings.Builder
}

type skip struct {
	key    testKey
	reason string
}

// prerequisiteMarker is how the test helpers word a skip for a missing
// prerequisite.
const prerequisiteMarker = "prerequisite missing"

func main() {
	r := &report{out: map[testKey]*strings.Builder{}}
	if err := r.read(os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, "testreport:", err)
		os.Exit(2)
	}
	if code := r.print(os.Stdout); code != 0 {
		os.Exit(code)
	}
}

func (r *report) read(in io.Reader) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil {
			// Not an event (a build error printed before the first event).
			r.build.Write(line)
			r.build.WriteByte('\n')
			continue
		}
		r.add(e)
	}
	return sc.Err()
}

func (r *report) add(e event) {
	if e.Action == "build-output" {
		r.build.WriteString(e.Output)
		return
	}
	if e.Action == "build-fail" {
		return
	}
	k := testKey{e.Package, e.Test}
	switch e.Action {
	case "output":
		b := r.out[k]
		if b == nil {
			b = &strings.Builder{}
			r.out[k] = b
		}
		b.WriteString(e.Output)
	case "pass", "fail", "skip":
		if e.Test == "" {
			r.packageDone(e)
			return
		}
		switch e.Action {
		case "pass":
			r.passed++
			delete(r.out, k)
		case "fail":
			r.nFailed++
			r.failed = append(r.failed, k)
		case "skip":
			r.nSkipped++
			r.skips = append(r.skips, skip{key: k, reason: skipReason(r.out[k])})
			delete(r.out, k)
		}
	}
}

func (r *report) packageDone(e event) {
	k := testKey{e.Package, ""}
	switch e.Action {
	case "pass":
		r.pkgLines = append(r.pkgLines, fmt.Sprintf("ok  \t%s\t%.3fs", e.Package, e.Elapsed))
	case "skip":
		r.pkgLines = append(r.pkgLines, fmt.Sprintf("?   \t%s\t[no test files]", e.Package))
	case "fail":
		r.pkgFail++
		r.failed = append(r.failed, k)
		r.pkgLines = append(r.pkgLines, fmt.Sprintf("FAIL\t%s\t%.3fs", e.Package, e.Elapsed))
	}
}

// skipReason is what the test printed after "--- SKIP", or its last line.
func skipReason(b *strings.Builder) string {
	if b == nil {
		return ""
	}
	var lines []string
	for _, l := range strings.Split(b.String(), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "=== ") || strings.HasPrefix(l, "--- SKIP") {
			continue
		}
		lines = append(lines, l)
	}
	if len(lines) == 0 {
		return ""
	}
	return lines[len(lines)-1]
}

func (r *report) print(w io.Writer) int {
	code := 0
	if r.build.Len() > 0 {
		fmt.Fprint(w, r.build.String())
	}
	for _, k := range r.failed {
		name := k.test
		if name == "" {
			name = "(package)"
		}
		fmt.Fprintf(w, "\n--- FAIL: %s %s\n", k.pkg, name)
		if b := r.out[k]; b != nil {
			fmt.Fprint(w, b.String())
		}
		code = 1
	}
	sort.Slice(r.skips, func(i, j int) bool {
		if r.skips[i].key.pkg != r.skips[j].key.pkg {
			return r.skips[i].key.pkg < r.skips[j].key.pkg
		}
		return r.skips[i].key.test < r.skips[j].key.test
	})
	var missing int
	if len(r.skips) > 0 {
		fmt.Fprintf(w, "\nskipped tests:\n")
		for _, s := range r.skips {
			fmt.Fprintf(w, "  %s %s: %s\n", s.key.pkg, s.key.test, s.reason)
			if strings.Contains(s.reason, prerequisiteMarker) {
				missing++
			}
		}
	}
	fmt.Fprintln(w)
	for _, l := range r.pkgLines {
		fmt.Fprintln(w, l)
	}
	if missing > 0 {
		fmt.Fprintf(w, "\n%d tests were skipped for a missing prerequisite: install it (.ci/prereqs.sh test) or run SHORT=1\n", missing)
		code = 1
	}
	if r.pkgFail > 0 && r.nFailed == 0 {
		// A package that failed without a failing test (build error,
		// panic in init, timeout) still counts as a failure.
		r.nFailed = r.pkgFail
	}
	fmt.Fprintf(w, "\n%d passed, %d failed, %d skipped\n", r.passed, r.nFailed, r.nSkipped)
	return code
}
