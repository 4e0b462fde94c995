package haproxy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard/switchyard/haproxy/runtimeapi"
)

// currentWorker is the master-CLI prefix of the current worker.
const currentWorker = "@1"

// step is one runtime command and what its failure means.
type step struct {
	cmd    string
	server Server
	// removal marks the two commands of a Remove: a missing server is fine
	// (already gone), and a failed "del server" means "still busy".
	removal bool
}

// Apply performs the runtime operations of ch on the current worker through
// the master CLI, in one connection:
//   - Add: "add server" with the server's options (plus check-ssl /
//     check-send-proxy where a configured server would imply them), then
//     "enable health" / "enable agent" and "set server ... state ready"
//     (HAProxy 2.6 creates dynamic servers in maintenance with checks off);
//   - Update: "set server ... addr ... port ..." and "set server ... weight";
//   - Remove: "set server ... state maint" (no new traffic; established
//     connections are not killed), then "del server". A server that still
//     has connections stays in maintenance and is deleted later by a
//     background retry, or disappears at the next reload.
//
// Servers removed earlier and still pending deletion are tried again first;
// re-adding one of them puts it back in service instead. Apply returns an
// error if any operation failed (the caller should then reload), and
// ErrNeedsReload for a Change with Reload set.
func (p *Process) Apply(ctx context.Context, ch Change) error {
	if ch.Reload {
		return fmt.Errorf("apply: %w: %s", ErrNeedsReload, ch.Reason)
	}
	if ch.IsZero() {
		return nil
	}
	if _, err := p.masterFor(); err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	p.opMu.Lock()
	defer p.opMu.Unlock()
	start := time.Now()

	var steps []step
	var errs []error
	for _, s := range ch.Add {
		key := s.Backend + "/" + s.Name
		if old, ok := p.pending[key]; ok {
			ss, err := revive(old, s)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			delete(p.pending, key)
			steps = append(steps, ss...)
			continue
		}
		rs, err := toRuntime(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("backend %s: %w", s.Backend, err))
			continue
		}
		steps = append(steps, step{cmd: runtimeapi.AddServerCmd(s.Backend, s.Name, s.Address, s.Port, rs.args), server: s})
		steps = append(steps, enableSteps(s, rs)...)
	}
	for _, s := range ch.Update {
		_, w := withoutWeight(s.Options)
		steps = append(steps,
			step{cmd: runtimeapi.SetServerAddrCmd(s.Backend, s.Name, s.Address, s.Port), server: s},
			step{cmd: runtimeapi.SetServerWeightCmd(s.Backend, s.Name, w), server: s},
		)
	}
	for _, s := range ch.Remove {
		steps = append(steps,
			step{cmd: runtimeapi.SetServerStateCmd(s.Backend, s.Name, runtimeapi.StateMaint), server: s, removal: true},
			step{cmd: runtimeapi.DelServerCmd(s.Backend, s.Name), server: s, removal: true},
		)
	}
	errs = append(errs, p.run(ctx, steps)...)
	if len(p.pending) > 0 {
		// Removals blocked by idle connections only can finish now; older
		// ones may have finished their requests.
		if err := p.retryPending(ctx); err != nil {
			p.log.Debug("retry pending server deletions", "err", err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	p.log.Info("runtime update applied", "added", len(ch.Add), "removed", len(ch.Remove),
		"updated", len(ch.Update), "pending_deletions", len(p.pending), "duration", time.Since(start))
	return nil
}

// enableSteps puts a just-added (or revived) server into service like a
// configured one: checks on, agent on, ready unless "disabled".
func enableSteps(s Server, rs runtimeServer) []step {
	var steps []step
	if rs.check {
		steps = append(steps, step{cmd: runtimeapi.EnableHealthCmd(s.Backend, s.Name), server: s})
	}
	if rs.agent {
		steps = append(steps, step{cmd: runtimeapi.EnableAgentCmd(s.Backend, s.Name), server: s})
	}
	if !rs.disabled {
		steps = append(steps, step{cmd: runtimeapi.SetServerStateCmd(s.Backend, s.Name, runtimeapi.StateReady), server: s})
	}
	return steps
}

// revive returns the steps that bring back a server pending deletion as s.
func revive(old, s Server) ([]step, error) {
	oo, _ := withoutWeight(old.Options)
	no, w := withoutWeight(s.Options)
	if oo != no {
		return nil, fmt.Errorf("backend %s: server %s is still draining with other options", s.Backend, s.Name)
	}
	rs, err := toRuntime(s)
	if err != nil {
		return nil, fmt.Errorf("backend %s: %w", s.Backend, err)
	}
	steps := []step{
		{cmd: runtimeapi.SetServerAddrCmd(s.Backend, s.Name, s.Address, s.Port), server: s},
		{cmd: runtimeapi.SetServerWeightCmd(s.Backend, s.Name, w), server: s},
	}
	return append(steps, enableSteps(s, rs)...), nil
}

// run executes steps in one batch on the current worker and interprets the
// answers. Called with opMu held.
func (p *Process) run(ctx context.Context, steps []step) []error {
	if len(steps) == 0 {
		return nil
	}
	cmds := make([]string, len(steps))
	for i, s := range steps {
		cmds[i] = s.cmd
	}
	outs, err := p.client.On(currentWorker).ExecuteBatch(ctx, cmds)
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	for i, out := range outs {
		st := steps[i]
		cerr := runtimeapi.CheckAnswer(st.cmd, out)
		switch {
		case cerr == nil:
		case st.removal && strings.Contains(out, "No such server"):
			// Already gone: nothing to do.
		case st.removal && strings.HasPrefix(st.cmd, "del server"):
			// Still has connections (or a queue): keep it in maintenance
			// and try again later.
			p.pending[st.server.Backend+"/"+st.server.Name] = st.server
			p.log.Debug("server still busy, deletion deferred", "backend", st.server.Backend,
				"server", st.server.Name, "answer", strings.TrimSpace(out))
		default:
			errs = append(errs, cerr)
		}
	}
	return errs
}

// retryPending tries again to delete the servers pending deletion. A server
// with no request in flight (used_cur 0 in "show servers conn") may still
// hold idle keep-alive connections, which HAProxy 2.6 keeps in its reuse
// pool and which block "del server"; changing the port of the (maintenance,
// unchecked) server closes them, after which the deletion succeeds. Servers
// with requests in flight are left alone. Called with opMu held.
func (p *Process) retryPending(ctx context.Context) error {
	if len(p.pending) == 0 {
		return nil
	}
	w := p.client.On(currentWorker)
	var backends []string
	for _, s := range p.pending {
		if !slices.Contains(backends, s.Backend) {
			backends = append(backends, s.Backend)
		}
	}
	cmds := make([]string, len(backends))
	for i, b := range backends {
		cmds[i] = "show servers conn " + b
	}
	outs, err := w.ExecuteBatch(ctx, cmds)
	if err != nil {
		return err
	}
	used := map[string]int{}
	for _, out := range outs {
		for k, v := range parseUsedConns(out) {
			used[k] = v
		}
	}
	var keys []string
	cmds = cmds[:0]
	for k, s := range p.pending {
		n, ok := used[k]
		switch {
		case !ok:
			delete(p.pending, k) // gone already
			continue
		case n > 0:
			continue // requests in flight: wait
		}
		keys = append(keys, k)
		cmds = append(cmds,
			runtimeapi.SetServerAddrCmd(s.Backend, s.Name, s.Address, purgePort(s.Port)),
			runtimeapi.DelServerCmd(s.Backend, s.Name))
	}
	if len(cmds) == 0 {
		return nil
	}
	outs, err = w.ExecuteBatch(ctx, cmds)
	for i := 1; i < len(outs); i += 2 {
		k := keys[i/2]
		if runtimeapi.CheckAnswer(cmds[i], outs[i]) == nil || strings.Contains(outs[i], "No such server") {
			p.log.Debug("deferred server deletion done", "server", k)
			delete(p.pending, k)
		}
	}
	return err
}

// purgePort returns a port different from port, used to make HAProxy drop
// the idle connections of a server about to be deleted.
func purgePort(port int) int {
	if port == 1 {
		return 2
	}
	return 1
}

// parseUsedConns reads "show servers conn" and returns used_cur (connections
// carrying a request) per "backend/server".
func parseUsedConns(out string) map[string]int {
	res := map[string]int{}
	col := -1
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if f[0] == "#" {
			// "# bkname/svname bkid/svid addr port - purge_delay used_cur ..."
			for i, name := range f[1:] {
				if name == "used_cur" {
					col = i
				}
			}
			continue
		}
		if col < 0 || col >= len(f) {
			continue
		}
		if n, err := strconv.Atoi(f[col]); err == nil {
			res[f[0]] = n
		}
	}
	return res
}
