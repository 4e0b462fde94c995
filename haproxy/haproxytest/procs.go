package haproxytest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Masters returns the pids of the live HAProxy masters running configPath
// (given with -f): processes whose command line has "-f configPath" and
// whose parent does not (workers are children of their master). Zombies
// are left out. Masters of several Process values, or orphans left behind,
// all count: a correct lb leaves exactly one while it runs, none after.
func Masters(configPath string) []int {
	procs := Processes(configPath)
	var out []int
	for pid, ppid := range procs {
		if _, child := procs[ppid]; !child {
			out = append(out, pid)
		}
	}
	slices.Sort(out)
	return out
}

// Processes returns the live processes (pid → parent pid) whose command
// line has "-f configPath": HAProxy masters and workers for it.
func Processes(configPath string) map[int]int {
	res := map[int]int{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil || !hasPair(strings.Split(string(cmd), "\x00"), "-f", configPath) {
			continue
		}
		state, ppid, ok := stat(pid)
		if !ok || state == 'Z' || state == 'X' {
			continue
		}
		res[pid] = ppid
	}
	return res
}

func hasPair(args []string, a, b string) bool {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == a && args[i+1] == b {
			return true
		}
	}
	return false
}

// stat reads the state and parent pid of a process from /proc/<pid>/stat.
func stat(pid int) (state byte, ppid int, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0, 0, false
	}
	ppid, err = strconv.Atoi(f[1])
	if err != nil || len(f[0]) == 0 {
		return 0, 0, false
	}
	return f[0][0], ppid, true
}
