// Package zktest runs a real ZooKeeper ensemble for tests: Debian's
// zookeeper package (/usr/share/java/zookeeper.jar, a JRE) started as one
// JVM per node on loopback ports, with its data in t.TempDir(). A test
// that needs it fails when ZooKeeper is not installed, except under
// -short, where it is skipped.
package zktest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Jar is the ZooKeeper server jar Debian's package installs.
const Jar = "/usr/share/java/zookeeper.jar"

// TickTime is the ensemble's tick: sessions may time out between 2 and
// 20 ticks (1s to 10s).
const TickTime = 500 * time.Millisecond

// Ensemble is a running ZooKeeper ensemble.
type Ensemble struct {
	t     testing.TB
	dir   string
	ports []int // client ports
	mu    sync.Mutex
	procs []*exec.Cmd
}

// Start starts an ensemble of n nodes and waits until it serves.
func Start(t testing.TB, n int) *Ensemble {
	t.Helper()
	if _, err := os.Stat(Jar); err != nil {
		if testing.Short() {
			t.Skip("zookeeper not installed (apt-get install zookeeper)")
		}
		t.Fatalf("zookeeper not installed (apt-get install zookeeper): %v", err)
	}
	java, err := exec.LookPath("java")
	if err != nil {
		if testing.Short() {
			t.Skip("no java")
		}
		t.Fatalf("zookeeper needs a JRE: %v", err)
	}
	e := &Ensemble{t: t, dir: t.TempDir(), procs: make([]*exec.Cmd, n)}
	ports := freePorts(t, 3*n)
	var servers strings.Builder
	for i := range n {
		e.ports = append(e.ports, ports[3*i])
		fmt.Fprintf(&servers, "server.%d=127.0.0.1:%d:%d\n", i+1, ports[3*i+1], ports[3*i+2])
	}
	for i := range n {
		nd := filepath.Join(e.dir, fmt.Sprint(i+1))
		if err := os.MkdirAll(filepath.Join(nd, "data"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(nd, "data", "myid"), []byte(fmt.Sprintf("%d\n", i+1)), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg := fmt.Sprintf("tickTime=%d\ninitLimit=20\nsyncLimit=5\ndataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\n"+
			"admin.enableServer=false\n4lw.commands.whitelist=srvr,ruok\nmaxClientCnxns=0\n",
			TickTime.Milliseconds(), filepath.Join(nd, "data"), e.ports[i])
		if n > 1 {
			cfg += servers.String()
		}
		if err := os.WriteFile(filepath.Join(nd, "zoo.cfg"), []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(e.stopAll)
	for i := range n {
		e.start(java, i)
	}
	for i := range n {
		e.WaitServing(i)
	}
	return e
}

func (e *Ensemble) start(java string, i int) {
	nd := filepath.Join(e.dir, fmt.Sprint(i+1))
	logf, err := os.OpenFile(filepath.Join(nd, "zk.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		e.t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(java, "-Xmx96m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
		"-Dzookeeper.admin.enableServer=false",
		"-cp", "/etc/zookeeper/conf:"+Jar,
		"org.apache.zookeeper.server.quorum.QuorumPeerMain", filepath.Join(nd, "zoo.cfg"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		e.t.Fatalf("start zookeeper %d: %v", i+1, err)
	}
	e.mu.Lock()
	e.procs[i] = cmd
	e.mu.Unlock()
}

// Servers lists the client addresses (host:port) of all nodes.
func (e *Ensemble) Servers() []string {
	out := make([]string, len(e.ports))
	for i, p := range e.ports {
		out[i] = fmt.Sprintf("127.0.0.1:%d", p)
	}
	return out
}

// URL is the zk:// URL of the ensemble with path p ("/switchyard").
func (e *Ensemble) URL(p string) string {
	return "zk://" + strings.Join(e.Servers(), ",") + p
}

// Kill kills node i (SIGKILL) and waits for it to exit.
func (e *Ensemble) Kill(i int) {
	e.mu.Lock()
	cmd := e.procs[i]
	e.procs[i] = nil
	e.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}

// Restart starts a killed node i again and waits until it serves.
func (e *Ensemble) Restart(i int) {
	java, _ := exec.LookPath("java")
	e.start(java, i)
	e.WaitServing(i)
}

// WaitServing waits until node i answers "srvr" as a leader, follower or
// standalone server (up to 90s: JVMs start slowly on a loaded machine).
func (e *Ensemble) WaitServing(i int) {
	e.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		mode, err := e.Mode(i)
		if err == nil && mode != "" {
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(e.dir, fmt.Sprint(i+1), "zk.log"))
			if len(log) > 4000 {
				log = log[len(log)-4000:]
			}
			e.t.Fatalf("zookeeper node %d does not serve: %v\n%s", i+1, err, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Mode asks node i for its mode (leader, follower, standalone); empty
// while it does not serve.
func (e *Ensemble) Mode(i int) (string, error) {
	c, err := net.DialTimeout("tcp", e.Servers()[i], time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("srvr")); err != nil {
		return "", err
	}
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		if m, ok := strings.CutPrefix(sc.Text(), "Mode: "); ok {
			return strings.TrimSpace(m), nil
		}
	}
	return "", fmt.Errorf("no mode in srvr answer: %w", sc.Err())
}

func (e *Ensemble) stopAll() {
	for i := range e.procs {
		e.Kill(i)
	}
}

func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var out []int
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		_ = ln.Close()
	}
	return out
}
