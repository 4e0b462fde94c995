package main

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const module = "github.com/switchyard/switchyard"

// allowedImports is go-style.md §3.3: for each of our packages, which of
// our other packages its non-test files may import. Packages not listed
// (and not under cmd/) may import nothing of ours.
var allowedImports = map[string][]string{
	"marathon":                       {},
	"marathon/httpapi":               {"marathon"},
	"marathon/marathontest":          {"marathon", "marathon/httpapi"},
	"lb":                             {"marathon"},
	"lb/lbtest":                      {"marathon"},
	"lb/zdd":                         {"marathon"},
	"templates":                      {"lb"},
	"haproxy/runtimeapi":             {},
	"haproxy":                        {"haproxy/runtimeapi"},
	"haproxy/haproxytest":            {"haproxy", "haproxy/runtimeapi"},
	"lb/controller":                  {"marathon", "lb", "templates", "haproxy", "haproxy/runtimeapi"},
	"scheduler/placement":            {},
	"scheduler/loglevel":             {},
	"scheduler/agent/driver":         {},
	"scheduler/agent/driver/process": {"scheduler/agent/driver"},
	"scheduler/agent/driver/docker":  {"scheduler/agent/driver"},
	"scheduler/agent/fetch":          {},
	"scheduler/health":               {"marathon"},
	"scheduler/agentapi":             {"marathon"},
	"scheduler/state":                {"marathon"},
	"scheduler/deploy":               {"marathon", "scheduler/state"},
	"scheduler":                      {"marathon", "scheduler/state", "scheduler/deploy", "scheduler/placement", "scheduler/agentapi"},
	// scheduler/server composes the daemon's handler (cmd/scheduler and
	// cmd/switchyard share it): the core, the v2 API and the agent API.
	// With --zk it also runs the election and the ZooKeeper state.
	"scheduler/server": {"marathon", "marathon/httpapi", "scheduler", "scheduler/agentapi", "scheduler/ui", "scheduler/dns",
		"scheduler/state", "scheduler/state/zkstore", "scheduler/leader", "scheduler/zk"},
	// scheduler/ui is static assets the browser runs against the public v2
	// API, plus the agents listing it is handed as a function.
	"scheduler/ui": {},
	// scheduler/dns reads the scheduler through its own small Source
	// interface (apps, events, leader, agents): it needs none of ours
	// but the marathon types, and nothing but scheduler/server wires it.
	"scheduler/dns": {"marathon"},
	// HA on ZooKeeper: shared URL/connection helpers, the state backend,
	// the election.
	"scheduler/zk":            {},
	"scheduler/zk/zktest":     {},
	"scheduler/state/zkstore": {"scheduler/state", "scheduler/zk"},
	"scheduler/leader":        {"scheduler/zk"},
	"scheduler/schedulertest": {"marathon", "scheduler/agentapi"},
	"scheduler/agent":         {"marathon", "scheduler/agentapi", "scheduler/health", "scheduler/agent/driver", "scheduler/agent/fetch"},
	"bench":                   nil, // benchmarks only; no non-test files
}

type listedPackage struct {
	ImportPath string
	Imports    []string
}

// TestImportPolicy enforces the package map: the LB side and the scheduler
// side share only the marathon contract, data flows one way, and nothing
// imports cmd/ except binaries importing the leaf helpers in cmd/internal/.
func TestImportPolicy(t *testing.T) {
	out, err := exec.Command("go", "list", "-json", module+"/...").Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		t.Fatalf("go list: %v\n%s", err, ee.Stderr)
	}
	require.NoError(t, err)

	dec := json.NewDecoder(strings.NewReader(string(out)))
	seen := 0
	for {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else {
			require.NoError(t, err)
		}
		seen++
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			dep := strings.TrimPrefix(imp, module+"/")
			if strings.HasPrefix(dep, "cmd/") {
				// cmd/internal/... is what the binaries share on their
				// command lines (flags, version, logger); only binaries
				// use it.
				if !strings.HasPrefix(rel, "cmd/") || strings.HasPrefix(rel, "cmd/internal/") || !strings.HasPrefix(dep, "cmd/internal/") {
					t.Errorf("%s imports %s: nothing but a binary may import cmd/, and only cmd/internal/", rel, dep)
				}
				continue
			}
			if strings.HasPrefix(rel, "cmd/internal/") {
				t.Errorf("%s imports %s: cmd/internal/ packages import none of ours", rel, dep)
				continue
			}
			if strings.HasPrefix(rel, "cmd/") {
				continue // binaries wire everything
			}
			allowed, known := allowedImports[rel]
			if !known {
				t.Errorf("%s is not in the package map (go-style.md §3.2); add it to allowedImports deliberately", rel)
				continue
			}
			ok := false
			for _, a := range allowed {
				if a == dep {
					ok = true
				}
			}
			if !ok {
				t.Errorf("%s imports %s: not allowed by go-style.md §3.3", rel, dep)
			}
		}
	}
	require.Greater(t, seen, 3, "go list found too few packages")
}
