package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"

	"github.com/switchyard/switchyard/scheduler/agent/driver"
)

// TaskPath is the PATH of command tasks: a task does not inherit the
// agent's environment (see Config.TaskEnvPassthrough).
const TaskPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// ErrRootTask is why a command task that would run as root is refused on
// an agent without Config.AllowRootTasks.
var ErrRootTask = errors.New("task would run as root, which this agent does not allow (agent --allow-root-tasks)")

// taskUser is the account a command task runs as.
type taskUser struct {
	name     string
	uid, gid int
	// switchTo is set when the task runs as another user than the agent.
	switchTo bool
}

// resolveTaskUser decides who runs a command task: the app's user, else
// the agent's DefaultUser, else the agent's own user. Root is refused
// unless AllowRootTasks. A name that is a number is taken as a uid.
func (a *Agent) resolveTaskUser(appUser string) (taskUser, error) {
	name := appUser
	if name == "" {
		name = a.cfg.DefaultUser
	}
	var u *user.User
	var err error
	if name == "" {
		u, err = user.LookupId(strconv.Itoa(os.Geteuid()))
	} else {
		u, err = user.Lookup(name)
		var unknown user.UnknownUserError
		if errors.As(err, &unknown) {
			if _, nerr := strconv.Atoi(name); nerr == nil {
				u, err = user.LookupId(name)
			}
		}
	}
	if err != nil {
		return taskUser{}, fmt.Errorf("task user %q: %w", name, err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return taskUser{}, fmt.Errorf("task user %q: non-numeric uid %q or gid %q", name, u.Uid, u.Gid)
	}
	if uid == 0 && !a.cfg.AllowRootTasks {
		return taskUser{}, ErrRootTask
	}
	return taskUser{name: u.Username, uid: uid, gid: gid, switchTo: uid != os.Geteuid()}, nil
}

// credential is the credential to start a process as tu with, or nil
// when it runs as the agent's user.
func (tu taskUser) credential() *syscall.Credential {
	if !tu.switchTo {
		return nil
	}
	return &syscall.Credential{Uid: uint32(tu.uid), Gid: uint32(tu.gid)}
}

// baseTaskEnv adds what a task gets beside Marathon's variables: PATH
// (command tasks; an image has its own) and the agent's variables named
// in TaskEnvPassthrough. Marathon's variables and the app's env win.
func (a *Agent) baseTaskEnv(spec *driver.TaskSpec, drvName string) {
	if spec.Env == nil {
		spec.Env = map[string]string{}
	}
	set := func(k, v string) {
		if _, ok := spec.Env[k]; !ok {
			spec.Env[k] = v
		}
	}
	for _, k := range a.cfg.TaskEnvPassthrough {
		if v, ok := os.LookupEnv(k); ok {
			set(k, v)
		}
	}
	if drvName == DriverProcess {
		set("PATH", TaskPath)
	}
}

// prepareSandbox creates a task's sandbox readable only by the task's
// user (0700), so tasks of other users cannot read its files or logs.
func prepareSandbox(dir string, tu taskUser) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("sandbox: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	if err := reachable(filepath.Dir(dir), tu); err != nil {
		return err
	}
	return chownSandbox(dir, tu)
}

// reachable checks that tu can pass through every directory from / down
// to dir, so a task running as tu can enter its sandbox there. Otherwise
// the kernel only says "permission denied" when the task starts; this
// names the directory and the fix.
func reachable(dir string, tu taskUser) error {
	if !tu.switchTo || tu.uid == 0 {
		return nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	for p := abs; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if ok {
			mode := fi.Mode().Perm()
			var can bool
			switch {
			case int(st.Uid) == tu.uid:
				can = mode&0o100 != 0
			case int(st.Gid) == tu.gid:
				can = mode&0o010 != 0
			default:
				can = mode&0o001 != 0
			}
			if !can {
				return fmt.Errorf("sandbox: user %s cannot reach %s: %s is %v, owned by uid %d: give it o+x (chmod o+x %s) or put the agent's --data-dir elsewhere",
					tu.name, abs, p, mode, st.Uid, p)
			}
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// chownSandbox gives the sandbox and what the agent put in it (fetched
// artifacts) to the task's user. Links are not followed. It runs before
// the task starts, so nothing in the sandbox is the task's doing.
func chownSandbox(dir string, tu taskUser) error {
	if !tu.switchTo {
		return nil
	}
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, tu.uid, tu.gid)
	})
	if err != nil {
		return fmt.Errorf("sandbox owner: %w", err)
	}
	return nil
}

// commandExec runs a COMMAND health check of a command task the way the
// task itself runs: as its user, in its sandbox, with its environment
// (and nothing of the agent's).
func commandExec(spec driver.TaskSpec, tu taskUser) func(ctx context.Context, command string) error {
	env := make([]string, 0, len(spec.Env))
	for k, v := range spec.Env {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	return func(ctx context.Context, command string) error {
		cmd := exec.Command("/bin/sh", "-c", command)
		cmd.Dir = spec.SandboxDir
		cmd.Env = env
		// Own group so a timeout kills the whole command.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: tu.credential()}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start command: %w", err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			return err
		case <-ctx.Done():
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
			return ctx.Err()
		}
	}
}
