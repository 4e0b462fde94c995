package runtimeapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
)

// Server administrative states accepted by [Client.SetServerState].
const (
	StateReady = "ready"
	StateDrain = "drain"
	StateMaint = "maint"
)

// Proc is one process line of the master CLI's "show proc".
type Proc struct {
	PID     int
	Type    string // "master", "worker" or a program name
	Reloads int    // for the master: reloads done; for a worker: reloads it survived
	Uptime  string
	Version string
}

// ProcList is the parsed answer of the master CLI's "show proc".
type ProcList struct {
	Master Proc
	// FailedReloads is the master's "[failed: N]" counter: how many reloads
	// failed since the last successful one (0 after a successful reload).
	FailedReloads int
	Workers       []Proc // current workers (normally one)
	OldWorkers    []Proc // workers of previous generations, still draining
}

// ShowProc runs "show proc" (master CLI only; any target set with [Client.On]
// is ignored) and parses it.
func (c *Client) ShowProc(ctx context.Context) (ProcList, error) {
	out, err := c.On("").Execute(ctx, "show proc")
	if err != nil {
		return ProcList{}, err
	}
	return ParseShowProc(out)
}

// ParseShowProc parses the text of the master CLI's "show proc".
func ParseShowProc(out string) (ProcList, error) {
	var pl ProcList
	section := "master"
	seenMaster := false
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "":
			continue
		case strings.HasPrefix(line, "#<PID>"):
			continue
		case line == "# workers":
			section = "workers"
			continue
		case line == "# old workers":
			section = "old"
			continue
		case strings.HasPrefix(line, "#"):
			section = "other"
			continue
		}
		f := strings.Fields(line)
		if len(f) < 3 {
			return pl, fmt.Errorf("show proc: malformed line %q", line)
		}
		pid, err := strconv.Atoi(f[0])
		if err != nil {
			return pl, fmt.Errorf("show proc: bad pid in %q", line)
		}
		reloads, err := strconv.Atoi(f[2])
		if err != nil {
			return pl, fmt.Errorf("show proc: bad reload count in %q", line)
		}
		p := Proc{PID: pid, Type: f[1], Reloads: reloads}
		rest := f[3:]
		if len(rest) >= 2 && rest[0] == "[failed:" {
			n, err := strconv.Atoi(strings.TrimSuffix(rest[1], "]"))
			if err != nil {
				return pl, fmt.Errorf("show proc: bad failed count in %q", line)
			}
			pl.FailedReloads = n
			rest = rest[2:]
		}
		if len(rest) > 0 {
			p.Uptime = rest[0]
		}
		if len(rest) > 1 {
			p.Version = rest[1]
		}
		switch section {
		case "master":
			pl.Master = p
			seenMaster = true
		case "workers":
			pl.Workers = append(pl.Workers, p)
		case "old":
			pl.OldWorkers = append(pl.OldWorkers, p)
		}
	}
	if !seenMaster {
		return pl, fmt.Errorf("show proc: no master line in %q", trimAnswer(out))
	}
	return pl, nil
}

// Reload asks the master to reload ("reload" on the master CLI, the same as
// SIGUSR2). HAProxy closes the connection while re-executing, so success here
// only means the request was delivered; watch [Client.ShowProc] for the
// outcome.
func (c *Client) Reload(ctx context.Context) error {
	conn, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	defer watch(ctx, conn)()
	if _, err := io.WriteString(conn, "reload\n"); err != nil {
		return fmt.Errorf("runtime api reload: %w", ctxErr(ctx, err))
	}
	if uc, ok := conn.(*net.UnixConn); ok {
		_ = uc.CloseWrite()
	}
	// A reset while the master re-executes is expected: only an answer
	// (such as "Permission denied") means the reload was refused.
	out, _ := io.ReadAll(conn)
	if a := trimAnswer(string(out)); a != "" {
		return &CommandError{Command: "reload", Response: a}
	}
	return nil
}

// ServerState is one line of "show servers state".
type ServerState struct {
	BackendID  int
	Backend    string
	ID         int
	Name       string
	Addr       string
	OpState    int // 0 stopped, 1 starting, 2 running, 3 stopping
	AdminState int // bit field; bit 0 (1) = forced maintenance
	UWeight    int // user-set weight
	IWeight    int // initial weight
	Port       int
}

// Maint reports whether the server is in forced or inherited maintenance.
func (s ServerState) Maint() bool { return s.AdminState&0x7 != 0 }

// ShowServersState runs "show servers state [backend]" (all backends when
// backend is empty).
func (c *Client) ShowServersState(ctx context.Context, backend string) ([]ServerState, error) {
	cmd := "show servers state"
	if backend != "" {
		cmd += " " + backend
	}
	out, err := c.Execute(ctx, cmd)
	if err != nil {
		return nil, err
	}
	return ParseServersState(out)
}

// ParseServersState parses the text of "show servers state".
func ParseServersState(out string) ([]ServerState, error) {
	var res []ServerState
	lines := strings.Split(out, "\n")
	for i, line := range lines {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if i == 0 && len(f) == 1 {
			continue // format version
		}
		if len(f) < 19 {
			return res, fmt.Errorf("show servers state: %s", line)
		}
		ints := make([]int, 0, 8)
		for _, idx := range []int{0, 2, 5, 6, 7, 8, 18} {
			n, err := strconv.Atoi(f[idx])
			if err != nil {
				return res, fmt.Errorf("show servers state: bad field %d in %q", idx, line)
			}
			ints = append(ints, n)
		}
		res = append(res, ServerState{
			BackendID: ints[0], Backend: f[1], ID: ints[1], Name: f[3], Addr: f[4],
			OpState: ints[2], AdminState: ints[3], UWeight: ints[4], IWeight: ints[5], Port: ints[6],
		})
	}
	return res, nil
}

// Command builders. They return the command text (without target) so that
// callers can batch them with [Client.ExecuteBatch] and check each answer with
// [CheckAnswer].

// AddServerCmd builds "add server backend/name addr:port opts".
func AddServerCmd(backend, name, addr string, port int, opts string) string {
	a := addr
	if strings.Contains(addr, ":") {
		a = "[" + addr + "]" // IPv6 literal
	}
	if port > 0 {
		a += ":" + strconv.Itoa(port)
	}
	return strings.TrimSpace(fmt.Sprintf("add server %s/%s %s %s", backend, name, a, opts))
}

// DelServerCmd builds "del server backend/name".
func DelServerCmd(backend, name string) string {
	return fmt.Sprintf("del server %s/%s", backend, name)
}

// SetServerStateCmd builds "set server backend/name state <state>".
func SetServerStateCmd(backend, name, state string) string {
	return fmt.Sprintf("set server %s/%s state %s", backend, name, state)
}

// SetServerAddrCmd builds "set server backend/name addr <addr> [port <port>]".
func SetServerAddrCmd(backend, name, addr string, port int) string {
	cmd := fmt.Sprintf("set server %s/%s addr %s", backend, name, addr)
	if port > 0 {
		cmd += " port " + strconv.Itoa(port)
	}
	return cmd
}

// SetServerWeightCmd builds "set server backend/name weight <weight>".
func SetServerWeightCmd(backend, name string, weight int) string {
	return fmt.Sprintf("set server %s/%s weight %d", backend, name, weight)
}

// EnableHealthCmd builds "enable health backend/name".
func EnableHealthCmd(backend, name string) string {
	return fmt.Sprintf("enable health %s/%s", backend, name)
}

// EnableAgentCmd builds "enable agent backend/name".
func EnableAgentCmd(backend, name string) string {
	return fmt.Sprintf("enable agent %s/%s", backend, name)
}

// successPrefixes lists, per command verb, the answers that mean success. An
// empty answer is success for every command that has no message of its own.
var successPrefixes = map[string][]string{
	"add server": {"New server registered."},
	"del server": {"Server deleted."},
	"set server": {"IP changed from", "no need to change the addr", "port changed from"},
}

// CheckAnswer returns a *CommandError when answer is not a success answer
// for cmd (a command built by one of the *Cmd functions above).
func CheckAnswer(cmd, answer string) error {
	a := trimAnswer(answer)
	if a == "" {
		if strings.HasPrefix(cmd, "add server") || strings.HasPrefix(cmd, "del server") {
			return &CommandError{Command: cmd, Response: "(empty answer)"}
		}
		return nil
	}
	verb := cmd
	if i := strings.Index(cmd, " "); i >= 0 {
		if j := strings.Index(cmd[i+1:], " "); j >= 0 {
			verb = cmd[:i+1+j]
		}
	}
	for _, p := range successPrefixes[verb] {
		if strings.HasPrefix(a, p) {
			return nil
		}
	}
	return &CommandError{Command: cmd, Response: a}
}

// run executes one command built by a *Cmd function and checks its answer.
func (c *Client) run(ctx context.Context, cmd string) error {
	out, err := c.Execute(ctx, cmd)
	if err != nil {
		return err
	}
	full, _ := c.full(cmd)
	if err := CheckAnswer(cmd, out); err != nil {
		var ce *CommandError
		if errors.As(err, &ce) {
			ce.Command = full
		}
		return err
	}
	return nil
}

// AddServer adds a dynamic server. HAProxy 2.6 creates it in maintenance
// with checks disabled; see [Client.EnableHealth] and [Client.SetServerState].
func (c *Client) AddServer(ctx context.Context, backend, name, addr string, port int, opts string) error {
	return c.run(ctx, AddServerCmd(backend, name, addr, port, opts))
}

// DelServer deletes a server. HAProxy requires it to be in maintenance and to
// have no active or idle connection and an empty queue.
func (c *Client) DelServer(ctx context.Context, backend, name string) error {
	return c.run(ctx, DelServerCmd(backend, name))
}

// SetServerState sets the administrative state (StateReady, StateDrain,
// StateMaint).
func (c *Client) SetServerState(ctx context.Context, backend, name, state string) error {
	return c.run(ctx, SetServerStateCmd(backend, name, state))
}

// SetServerAddr changes a server's address and, when port > 0, its port.
func (c *Client) SetServerAddr(ctx context.Context, backend, name, addr string, port int) error {
	return c.run(ctx, SetServerAddrCmd(backend, name, addr, port))
}

// SetServerWeight changes a server's weight.
func (c *Client) SetServerWeight(ctx context.Context, backend, name string, weight int) error {
	return c.run(ctx, SetServerWeightCmd(backend, name, weight))
}

// EnableHealth starts the health checks of a server (needed after
// AddServer with "check").
func (c *Client) EnableHealth(ctx context.Context, backend, name string) error {
	return c.run(ctx, EnableHealthCmd(backend, name))
}
