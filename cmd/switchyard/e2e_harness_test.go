//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/switchyard/switchyard/haproxy/haproxytest"
)

// This file is the harness of the cluster end-to-end test: it builds the
// real binaries, runs them inside a private network namespace (so fixed
// ports such as :8080 and the agents' port ranges never collide with the
// host or with other tests), and talks to them over real HTTP from the
// test process through a dialer that opens its sockets in that namespace.

// e2eModule is the import path prefix of the binaries under test.
const e2eModule = "github.com/switchyard/switchyard/cmd/"

// e2eRequire reports a missing prerequisite: the test fails (a suite must
// not pass by skipping), or skips under -short.
func e2eRequire(t *testing.T, ok bool, format string, args ...any) {
	t.Helper()
	if ok {
		return
	}
	haproxytest.Unavailable(t, format, args...)
}

// e2eBuild builds the named commands (e.g. "scheduler") into dir with one
// `go build` and returns the path of each binary.
func e2eBuild(t *testing.T, dir string, names ...string) (map[string]string, error) {
	t.Helper()
	args := []string{"build", "-o", dir + string(os.PathSeparator)}
	for _, n := range names {
		args = append(args, e2eModule+n)
	}
	cmd := exec.Command("go", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go build %s: %w\n%s", strings.Join(names, " "), err, out.String())
	}
	t.Logf("built %s in %s", strings.Join(names, ", "), time.Since(start).Round(time.Millisecond))
	bins := map[string]string{}
	for _, n := range names {
		bins[n] = filepath.Join(dir, n)
	}
	return bins, nil
}

// e2eHasGoFiles reports whether the command directory cmd/<name> holds a
// non-test Go file yet (components land while this test is written).
func e2eHasGoFiles(name string) bool {
	m, _ := filepath.Glob(filepath.Join("..", name, "*.go"))
	for _, f := range m {
		if !strings.HasSuffix(f, "_test.go") {
			return true
		}
	}
	return false
}

// e2eNetns is a private network namespace with loopback up and its own
// /etc/hosts (via /etc/netns/NAME/hosts, which `ip netns exec` binds over
// /etc/hosts), so the agents' host names resolve to 127.0.0.1 for HAProxy.
type e2eNetns struct {
	name string
	f    *os.File // /var/run/netns/NAME, for setns
}

// e2eNewNetns creates the namespace; its cleanup kills every process still
// inside it (tasks orphaned by killed agents included) and deletes it.
func e2eNewNetns(t *testing.T, hostNames ...string) *e2eNetns {
	t.Helper()
	e2eRequire(t, os.Geteuid() == 0, "root is needed for network namespaces")
	_, err := exec.LookPath("ip")
	e2eRequire(t, err == nil, "the ip command (iproute2): %v", err)
	e2eSweepStaleNetns(t)
	name := fmt.Sprintf("%s%d-%04d", e2eNetnsPrefix, os.Getpid(), rand.IntN(10000))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		e2eRequire(t, false, "ip netns add: %v: %s", err, out)
	}
	ns := &e2eNetns{name: name}
	t.Cleanup(ns.destroy)
	out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput()
	require.NoError(t, err, "ip link set lo up: %s", out)
	ns.f, err = os.Open("/var/run/netns/" + name)
	require.NoError(t, err)
	etc := filepath.Join("/etc/netns", name)
	require.NoError(t, os.MkdirAll(etc, 0o755))
	hosts := "127.0.0.1 localhost " + strings.Join(hostNames, " ") + "\n::1 localhost ip6-localhost\n"
	require.NoError(t, os.WriteFile(filepath.Join(etc, "hosts"), []byte(hosts), 0o644))
	return ns
}

// e2eNetnsPrefix starts the name of every namespace this test creates;
// the number after it is the pid of the test process that owns it.
const e2eNetnsPrefix = "sy-e2e-"

// e2eSweepStaleNetns removes namespaces left behind by earlier runs of
// this test that were killed before their cleanup (owner pid gone),
// together with the processes still inside them.
func e2eSweepStaleNetns(t *testing.T) {
	entries, _ := os.ReadDir("/var/run/netns")
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), e2eNetnsPrefix)
		if !ok {
			continue
		}
		owner, err := strconv.Atoi(strings.SplitN(rest, "-", 2)[0])
		if err != nil || owner == os.Getpid() {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", owner)); err == nil {
			continue // its test is still running
		}
		t.Logf("removing stale namespace %s of a killed test run", e.Name())
		(&e2eNetns{name: e.Name()}).destroy()
	}
}

// pids lists the processes inside the namespace.
func (n *e2eNetns) pids() []int {
	out, err := exec.Command("ip", "netns", "pids", n.name).Output()
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		// Never this test process, whatever a stray thread did.
		if p, err := strconv.Atoi(f); err == nil && p != os.Getpid() {
			pids = append(pids, p)
		}
	}
	return pids
}

func (n *e2eNetns) destroy() {
	for range 20 {
		pids := n.pids()
		if len(pids) == 0 {
			break
		}
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n.f != nil {
		_ = n.f.Close()
	}
	_ = exec.Command("ip", "netns", "del", n.name).Run()
	_ = os.RemoveAll(filepath.Join("/etc/netns", n.name))
}

// run calls fn on an OS thread switched into the namespace, then
// switches the thread back. If switching back fails the thread stays
// locked, so the runtime discards it when the goroutine ends and no other
// goroutine ever runs in the namespace by accident.
func (n *e2eNetns) run(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- fmt.Errorf("open own netns: %w", err)
			return
		}
		defer orig.Close()
		if err := unix.Setns(int(n.f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", n.name, err)
			return
		}
		err = fn()
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// DialContext opens a connection from inside the namespace: a socket stays
// in the namespace it was created in, whichever thread uses it later.
func (n *e2eNetns) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := n.run(func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// client returns an HTTP client whose connections live in the namespace.
// timeout 0 means none (for event streams).
func (n *e2eNetns) client(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext:         n.DialContext,
			MaxIdleConnsPerHost: 8,
			IdleConnTimeout:     5 * time.Second,
		},
	}
}

// e2eProc is one daemon started in the namespace.
type e2eProc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // set before done is closed
}

// e2eStart starts bin with args inside the namespace, logging to
// dir/name.log (appended across restarts). Its cleanup stops it.
func e2eStart(t *testing.T, ns *e2eNetns, dir, name string, env []string, bin string, args ...string) *e2eProc {
	t.Helper()
	logf, err := os.OpenFile(filepath.Join(dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	require.NoError(t, err)
	defer logf.Close()
	fmt.Fprintf(logf, "=== start %s %s\n", time.Now().UTC().Format(time.RFC3339Nano), strings.Join(args, " "))
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns.name, bin}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group: a ^C to `go test` must not hit it before cleanup.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start(), "start %s", name)
	p := &e2eProc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(5 * time.Second) })
	return p
}

// pid is the daemon's pid (`ip netns exec` execs the binary in place).
func (p *e2eProc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended.
func (p *e2eProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the daemon only (not its tasks).
func (p *e2eProc) signal(sig syscall.Signal) error {
	if p.exited() {
		return nil
	}
	return syscall.Kill(p.pid(), sig)
}

// wait waits up to d for the process to end.
func (p *e2eProc) wait(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// stop sends SIGTERM, then SIGKILL after grace, and waits.
func (p *e2eProc) stop(grace time.Duration) {
	if p.exited() {
		return
	}
	_ = p.signal(syscall.SIGTERM)
	if !p.wait(grace) {
		_ = p.signal(syscall.SIGKILL)
		p.wait(5 * time.Second)
	}
}

// e2eTail returns the last n lines of a file, for failure reports.
func e2eTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// e2eAPI is a curl-like JSON client of the scheduler.
type e2eAPI struct {
	base string
	hc   *http.Client
}

// e2eResp is one HTTP answer.
type e2eResp struct {
	status int
	header http.Header
	body   []byte
}

func (r e2eResp) String() string {
	return fmt.Sprintf("HTTP %d %s", r.status, bytes.TrimSpace(r.body))
}

// decode unmarshals the body into v.
func (r e2eResp) decode(t *testing.T, v any) {
	t.Helper()
	require.NoError(t, json.Unmarshal(r.body, v), "decode %s", r)
}

// call sends method path with body (a string is sent verbatim, anything
// else as JSON, nil as no body). A transport error is returned as status 0.
func (a *e2eAPI) call(method, path string, body any) (e2eResp, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return e2eResp{}, err
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, a.base+path, rd)
	if err != nil {
		return e2eResp{}, err
	}
	req.Header.Set("Accept", "application/json")
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := a.hc.Do(req)
	if err != nil {
		return e2eResp{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return e2eResp{}, err
	}
	return e2eResp{status: res.StatusCode, header: res.Header, body: b}, nil
}

// do is call that fails the test on a transport error.
func (a *e2eAPI) do(t *testing.T, method, path string, body any) e2eResp {
	t.Helper()
	r, err := a.call(method, path, body)
	require.NoError(t, err, "%s %s", method, path)
	require.Less(t, r.status, 500, "%s %s must never answer 5xx: %s", method, path, r)
	return r
}

// expect is do plus a status check and an optional decode into out.
func (a *e2eAPI) expect(t *testing.T, want int, method, path string, body, out any) e2eResp {
	t.Helper()
	r := a.do(t, method, path, body)
	require.Equal(t, want, r.status, "%s %s: %s", method, path, r)
	if out != nil {
		r.decode(t, out)
	}
	return r
}

// e2eEventually polls cond every interval until it reports true or the
// timeout passes, then fails with cond's last description.
func e2eEventually(t *testing.T, timeout, interval time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	last := ""
	for {
		ok, desc := cond()
		if ok {
			return time.Since(start)
		}
		last = desc
		if time.Since(start) > timeout {
			t.Fatalf("%s: not reached within %s; last: %s", what, timeout, last)
		}
		time.Sleep(interval)
	}
}

// e2eListenerPID finds the process listening on TCP port inside the
// namespace, the way `ss -ltnp` does: the socket inode from
// /proc/PID/net/tcp{,6} of a process in the namespace, then the process
// holding that inode among the namespace's processes.
func e2eListenerPID(ns *e2eNetns, port int) (int, error) {
	pids := ns.pids()
	if len(pids) == 0 {
		return 0, errors.New("no process in the namespace")
	}
	inode := ""
	for _, p := range pids {
		for _, tbl := range []string{"tcp", "tcp6"} {
			if i, err := e2eListenInode(fmt.Sprintf("/proc/%d/net/%s", p, tbl), port); err == nil && i != "" {
				inode = i
				break
			}
		}
		if inode != "" {
			break
		}
	}
	if inode == "" {
		return 0, fmt.Errorf("nothing listens on port %d", port)
	}
	want := "socket:[" + inode + "]"
	for _, p := range pids {
		fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p))
		if err != nil {
			continue
		}
		for _, fd := range fds {
			l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", p, fd.Name()))
			if err == nil && l == want {
				return p, nil
			}
		}
	}
	return 0, fmt.Errorf("no process holds socket inode %s (port %d)", inode, port)
}

// e2eListenInode returns the inode of the listening socket on port in a
// /proc/net/tcp-format table, or "".
func e2eListenInode(path string, port int) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	suffix := fmt.Sprintf(":%04X", port)
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		// sl local rem st tx:rx tr:when retrnsmt uid timeout inode
		if len(fs) < 10 || fs[3] != "0A" || !strings.HasSuffix(fs[1], suffix) {
			continue
		}
		return fs[9], nil
	}
	return "", sc.Err()
}

// e2eAlive reports whether pid is a live, non-zombie process.
func e2eAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	st := b[i+2]
	return st != 'Z' && st != 'X'
}

// e2ePGID returns the process group of pid.
func e2ePGID(pid int) (int, error) {
	return syscall.Getpgid(pid)
}
