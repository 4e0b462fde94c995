package zdd

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/switchyard/switchyard/marathon"
)

// StatRow is one server line of HAProxy's CSV statistics
// (/haproxy?stats;csv): the fields zdd reads.
type StatRow struct {
	Proxy  string // pxname (the backend)
	Server string // svname
	Status string // UP, DOWN, MAINT, DRAIN, "UP 1/3", ...
	Sessions,
	Queued int // scur, qcur
}

// maxStatRows bounds how much of a stats page is read.
const maxStatRows = 1 << 20

// ParseStats parses HAProxy's CSV statistics and returns the server rows
// (FRONTEND and BACKEND summary rows are left out). The header line
// ("# pxname,svname,...") names the columns; rows with too few fields are
// skipped.
func ParseStats(r io.Reader) ([]StatRow, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("stats csv: header: %w", err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[strings.TrimSpace(strings.TrimPrefix(h, "# "))] = i
	}
	for _, want := range []string{"pxname", "svname", "status", "scur", "qcur"} {
		if _, ok := col[want]; !ok {
			return nil, fmt.Errorf("stats csv: no %q column in the header", want)
		}
	}
	get := func(rec []string, name string) string {
		if i := col[name]; i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	var out []StatRow
	for range maxStatRows {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				continue // a bad line: skip it
			}
			return nil, fmt.Errorf("stats csv: %w", err)
		}
		if len(rec) == 0 || strings.HasPrefix(rec[0], "#") || len(rec) <= col["status"] {
			continue
		}
		sv := get(rec, "svname")
		if sv == "FRONTEND" || sv == "BACKEND" || sv == "" {
			continue
		}
		scur, _ := strconv.Atoi(get(rec, "scur"))
		qcur, _ := strconv.Atoi(get(rec, "qcur"))
		out = append(out, StatRow{Proxy: get(rec, "pxname"), Server: sv, Status: get(rec, "status"), Sessions: scur, Queued: qcur})
	}
	return out, fmt.Errorf("stats csv: more than %d rows", maxStatRows)
}

// cleanName is the load balancer's HAProxy-safe name form: every byte
// other than an ASCII letter, digit or '-' becomes '_'.
func cleanName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-') {
			b[i] = '_'
		}
	}
	return string(b)
}

// serverNames returns the names a load balancer may give a task's first
// port: "<ip>_<port>" or "<host>_<ip>_<port>" (cleaned), for the task's
// host, its reported IP addresses and the host's resolved addresses.
func serverNames(t marathon.Task, hostAddrs []string) []string {
	if len(t.Ports) == 0 || t.Host == "" {
		return nil
	}
	port := strconv.Itoa(t.Ports[0])
	addrs := append([]string{t.Host}, hostAddrs...)
	for _, ip := range t.IPAddresses {
		addrs = append(addrs, ip.IPAddress)
	}
	var out []string
	for _, a := range addrs {
		out = append(out, cleanName(a+"_"+port), cleanName(t.Host+"_"+a+"_"+port))
	}
	return out
}

// BuildLBView folds the stats of every LB into the view Next uses. rows
// holds one slice per LB; only rows of the group's backends (pxname
// "<group>_<port>") count. resolve returns the addresses of a host (nil
// when unknown).
func BuildLBView(rows [][]StatRow, group string, newApp, oldApp marathon.App, resolve func(string) []string) *LBView {
	prefix := marathon.SafeID(group) + "_"
	type state struct{ up, maint, idle bool }
	perLB := make([]map[string]state, len(rows))
	for i, lb := range rows {
		m := map[string]state{}
		for _, r := range lb {
			port, ok := strings.CutPrefix(r.Proxy, prefix)
			if _, err := strconv.Atoi(port); !ok || err != nil {
				continue // another app's backend ("<group>_<port>" only)
			}
			st := strings.ToUpper(r.Status)
			m[r.Server] = state{
				up:    strings.HasPrefix(st, "UP") || st == "OPEN" || st == "NO CHECK",
				maint: strings.HasPrefix(st, "MAINT") || strings.HasPrefix(st, "DRAIN"),
				idle:  r.Sessions == 0 && r.Queued == 0,
			}
		}
		perLB[i] = m
	}
	find := func(lb map[string]state, t marathon.Task) (state, bool) {
		for _, n := range serverNames(t, resolve(t.Host)) {
			if s, ok := lb[n]; ok {
				return s, true
			}
		}
		return state{}, false
	}
	v := &LBView{Up: map[string]bool{}, Drained: map[string]bool{}, Draining: map[string]bool{}}
	for _, t := range newApp.Tasks {
		up := len(perLB) > 0
		for _, lb := range perLB {
			s, ok := find(lb, t)
			up = up && ok && s.up
		}
		v.Up[t.ID] = up
	}
	for _, t := range oldApp.Tasks {
		drained, draining := len(perLB) > 0, len(perLB) > 0
		for _, lb := range perLB {
			s, ok := find(lb, t)
			if !ok {
				continue // gone from this LB: no traffic
			}
			drained = drained && s.maint && s.idle
			draining = draining && s.maint
		}
		v.Drained[t.ID] = drained
		v.Draining[t.ID] = draining || drained
	}
	return v
}
