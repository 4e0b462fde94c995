package agent

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/switchyard/switchyard/scheduler/agentapi"
)

// defaultPorts is the port range offered when none is configured (Mesos'
// default agent range).
var defaultPorts = agentapi.PortRange{Begin: 31000, End: 32000}

// DetectResources returns what this machine can offer when the operator
// names nothing, as a Mesos agent would: all CPUs, total memory minus
// what the system keeps (1 GiB, or half on small machines), the free
// space of dataDir minus the same reserve, and ports 31000-32000.
func DetectResources(dataDir string) agentapi.Resources {
	r := agentapi.Resources{CPUs: float64(runtime.NumCPU()), Ports: []agentapi.PortRange{defaultPorts}}
	if total, err := memTotalMiB(); err == nil {
		r.Mem = total - math.Min(1024, total/2)
	}
	var st syscall.Statfs_t
	if dataDir != "" && syscall.Statfs(dataDir, &st) == nil {
		free := float64(st.Bavail) * float64(st.Bsize) / (1 << 20)
		r.Disk = math.Floor(free - math.Min(5120, free/2))
	}
	return r
}

func memTotalMiB() (float64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseFloat(fields[1], 64)
			if err != nil {
				return 0, fmt.Errorf("meminfo: %w", err)
			}
			return math.Floor(kb / 1024), nil
		}
	}
	return 0, errors.New("meminfo: no MemTotal")
}

// ParseResources parses a Mesos agent --resources string such as
// "cpus:4;mem:4096;disk:10000;ports:[31000-32000,8080-8080]" on top of
// defaults: resources it names replace the defaults, others keep them.
// A role suffix ("cpus(*):4") is accepted and ignored, as are resources
// other than cpus, mem, disk and ports (gpus, ...).
func ParseResources(s string, defaults agentapi.Resources) (agentapi.Resources, error) {
	out := defaults
	out.Ports = append([]agentapi.PortRange(nil), defaults.Ports...)
	for _, item := range strings.Split(s, ";") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, value, ok := strings.Cut(item, ":")
		if !ok {
			return agentapi.Resources{}, fmt.Errorf("resource %q: want name:value", item)
		}
		name = strings.TrimSpace(name)
		if i := strings.IndexByte(name, '('); i >= 0 {
			if !strings.HasSuffix(name, ")") {
				return agentapi.Resources{}, fmt.Errorf("resource %q: unclosed role", item)
			}
			name = name[:i]
		}
		value = strings.TrimSpace(value)
		switch name {
		case "cpus", "mem", "disk":
			f, err := strconv.ParseFloat(value, 64)
			if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
				return agentapi.Resources{}, fmt.Errorf("resource %s: %q is not a non-negative number", name, value)
			}
			switch name {
			case "cpus":
				out.CPUs = f
			case "mem":
				out.Mem = f
			default:
				out.Disk = f
			}
		case "ports":
			pr, err := parseRanges(value)
			if err != nil {
				return agentapi.Resources{}, fmt.Errorf("resource ports: %w", err)
			}
			out.Ports = pr
		case "":
			return agentapi.Resources{}, fmt.Errorf("resource %q: empty name", item)
		default:
			// Other resources (gpus, custom ones) are not scheduled here.
		}
	}
	return out, nil
}

// parseRanges parses "[a-b,c-d]" (a single "n" means n-n), sorted, with
// overlaps rejected.
func parseRanges(v string) ([]agentapi.PortRange, error) {
	if !strings.HasPrefix(v, "[") || !strings.HasSuffix(v, "]") {
		return nil, fmt.Errorf("%q: want [begin-end,...]", v)
	}
	body := strings.TrimSpace(v[1 : len(v)-1])
	if body == "" {
		return []agentapi.PortRange{}, nil
	}
	var out []agentapi.PortRange
	for _, part := range strings.Split(body, ",") {
		part = strings.TrimSpace(part)
		b, e, isRange := strings.Cut(part, "-")
		if !isRange {
			e = b
		}
		begin, err1 := strconv.Atoi(strings.TrimSpace(b))
		end, err2 := strconv.Atoi(strings.TrimSpace(e))
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("range %q: not numbers", part)
		}
		if begin < 1 || end > 65535 || begin > end {
			return nil, fmt.Errorf("range %q: want 1 <= begin <= end <= 65535", part)
		}
		out = append(out, agentapi.PortRange{Begin: begin, End: end})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Begin < out[j].Begin })
	for i := 1; i < len(out); i++ {
		if out[i].Begin <= out[i-1].End {
			return nil, fmt.Errorf("ranges %d-%d and %d-%d overlap", out[i-1].Begin, out[i-1].End, out[i].Begin, out[i].End)
		}
	}
	return out, nil
}

// ParseAttributes parses a Mesos agent --attributes string such as
// "rack:r1;zone:a" into a map. Values may contain ':'; a repeated name
// is an error.
func ParseAttributes(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, item := range strings.Split(s, ";") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, value, ok := strings.Cut(item, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || name == "" {
			return nil, fmt.Errorf("attribute %q: want name:value", item)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("attribute %q given twice", name)
		}
		out[name] = value
	}
	return out, nil
}
