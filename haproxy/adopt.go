package haproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// adoptTimeout bounds how long Start waits for a previous master's CLI.
const adoptTimeout = 2 * time.Second

// previous is an HAProxy master found running for our configuration when
// Start is called: left behind by a previous lb that did not stop it.
type previous struct {
	pid int
	// adopt is set when the master can be taken over: same command line,
	// master CLI answering. It is then watched through a pidfd.
	adopt *master
}

// findPrevious looks for a master started for this configuration, through
// the pid file, or the master socket when the pid file is gone. It returns
// nil when there is none (no such process, or a process that is not an
// HAProxy master for ConfigPath and MasterSocket).
func (p *Process) findPrevious(ctx context.Context) *previous {
	pid := p.previousPID(ctx)
	if pid <= 1 || pid == os.Getpid() {
		return nil
	}
	// A pidfd pins the process: once it is open, pid cannot name another
	// process, so what we check next is about the process we watch.
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil // gone
	}
	keep := false
	defer func() {
		if !keep {
			_ = unix.Close(fd)
		}
	}()
	args, err := processArgs(pid)
	if err != nil || len(args) < 2 {
		return nil
	}
	ours := p.args()
	if !containsSeq(args[1:], []string{"-S", ours[3]}) || !containsSeq(args[1:], []string{"-f", p.cfg.ConfigPath}) {
		return nil // another program, or an HAProxy for something else
	}
	prev := &previous{pid: pid}
	if !slices.Equal(originalArgs(args[1:]), ours) {
		p.log.Warn("found an haproxy for this configuration started with other arguments; it will be replaced",
			"pid", pid, "args", strings.Join(args, " "))
		return prev
	}
	ctx, cancel := context.WithTimeout(ctx, adoptTimeout)
	defer cancel()
	pl, err := p.client.ShowProc(ctx)
	if err != nil || pl.Master.PID != pid || len(pl.Workers) == 0 {
		p.log.Warn("found an haproxy for this configuration whose master CLI does not answer; it will be replaced",
			"pid", pid, "err", err)
		return prev
	}
	keep = true
	m := &master{pid: pid, adopted: true, started: time.Now(), exited: make(chan struct{})}
	go watchPidfd(fd, m)
	prev.adopt = m
	return prev
}

// previousPID is the pid in the pid file, else the master pid the master
// socket reports, else 0.
func (p *Process) previousPID(ctx context.Context) int {
	if b, err := os.ReadFile(p.cfg.PIDFile); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			return pid
		}
	}
	ctx, cancel := context.WithTimeout(ctx, adoptTimeout)
	defer cancel()
	pl, err := p.client.ShowProc(ctx)
	if err != nil {
		return 0
	}
	return pl.Master.PID
}

// watchPidfd closes m.exited once the process behind fd has exited, after
// killing what is left of its process group (its workers).
func watchPidfd(fd int, m *master) {
	defer unix.Close(fd)
	for {
		_, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, -1)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	m.err = errors.New("adopted master exited (status unknown: not lb's child)")
	_ = syscall.Kill(-m.pid, syscall.SIGKILL)
	close(m.exited)
}

// processArgs returns the command line of a live (not zombie) process.
func processArgs(pid int) ([]string, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	// "pid (comm) S ...": the state follows the last ')'.
	if i := bytes.LastIndexByte(stat, ')'); i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' || stat[i+2] == 'X' {
		return nil, fmt.Errorf("process %d is not running", pid)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return nil, err
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00"), nil
}

// originalArgs strips from a master's arguments what a reload adds in
// front of them when the master re-executes itself: "-sf <pids...>",
// "-st <pids...>" and "-x <socket>".
func originalArgs(args []string) []string {
	for len(args) > 0 {
		switch args[0] {
		case "-sf", "-st":
			args = args[1:]
			for len(args) > 0 && isNumber(args[0]) {
				args = args[1:]
			}
		case "-x":
			args = args[min(2, len(args)):]
		default:
			return args
		}
	}
	return args
}

func isNumber(s string) bool {
	_, err := strconv.Atoi(s)
	return err == nil
}

// containsSeq reports whether sub appears in s as a contiguous run.
func containsSeq(s, sub []string) bool {
	if len(sub) == 0 {
		return true
	}
	for i := 0; i+len(sub) <= len(s); i++ {
		if slices.Equal(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}
