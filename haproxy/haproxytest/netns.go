package haproxytest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// NetnsEnv is set (to the namespace name) in a test process that InNetns
// started inside a private network namespace.
const NetnsEnv = "SWITCHYARD_NETNS"

// InNetns makes the calling test run inside a fresh network namespace, where
// it can bind 127.0.0.1 and the well-known ports (80, 443, 9090, 9091)
// without colliding with the host or other tests. Use it as the first line of
// the test:
//
//	func TestEndToEnd(t *testing.T) {
//		if haproxytest.InNetns(t) {
//			return // the test ran in the namespace; its result is ours
//		}
//		... // here we are inside the namespace
//	}
//
// Outside a namespace (NetnsEnv unset), InNetns creates one ("ip netns add
// sy-<random>", loopback up), re-runs the current test binary for this test
// only inside it ("ip netns exec"), streams its output into this test's,
// fails this test if the inner run failed (and skips it if the inner run
// skipped), deletes the namespace and returns true: the caller must return
// at once, and the outer test passes exactly when the inner one passed.
// Inside the namespace it returns false and the test proceeds.
//
// It needs root and the ip command: without them the test fails (skips
// under -short). Only top-level tests and subtests that can be selected by
// -test.run are supported; do not call it from a parallel subtest sharing
// state with its parent.
func InNetns(t *testing.T) (ranInChild bool) {
	t.Helper()
	if os.Getenv(NetnsEnv) != "" {
		return false
	}
	if os.Geteuid() != 0 {
		Unavailable(t, "network namespaces need root")
	}
	ip, err := exec.LookPath("ip")
	if err != nil {
		Unavailable(t, "the ip command is missing")
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	ns := "sy-" + hex.EncodeToString(rnd[:])
	if out, err := exec.Command(ip, "netns", "add", ns).CombinedOutput(); err != nil {
		Unavailable(t, "ip netns add %s: %v: %s", ns, err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command(ip, "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", ns, err, bytes.TrimSpace(out))
		}
	})
	if out, err := exec.Command(ip, "-n", ns, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip -n %s link set lo up: %v: %s", ns, err, bytes.TrimSpace(out))
	}

	args := []string{"netns", "exec", ns, "env", NetnsEnv + "=" + ns, os.Args[0],
		"-test.run", runPattern(t.Name()), "-test.v=true", "-test.count=1"}
	if testing.Short() {
		args = append(args, "-test.short")
	}
	if d, ok := t.Deadline(); ok {
		args = append(args, "-test.timeout", time.Until(d).Round(time.Second).String())
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(t.Context(), ip, args...)
	w := io.MultiWriter(&out, t.Output())
	cmd.Stdout, cmd.Stderr = w, w
	t.Logf("running %s in network namespace %s", t.Name(), ns)
	runErr := cmd.Run()
	switch {
	case runErr != nil:
		t.Errorf("%s failed inside network namespace %s: %v", t.Name(), ns, runErr)
	case strings.Contains(out.String(), "testing: warning: no tests to run"):
		t.Errorf("%s was not selected inside network namespace %s", t.Name(), ns)
	case strings.Contains(out.String(), "--- SKIP: "+t.Name()+" "):
		t.Skipf("%s skipped inside network namespace %s", t.Name(), ns)
	}
	return true
}

// runPattern builds a -test.run pattern matching exactly the test name,
// level by level.
func runPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}
