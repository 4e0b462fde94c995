package zdd

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
)

// statsHeader is the start of HAProxy 2.6's CSV header (the columns zdd
// reads are at their real positions).
const statsHeader = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck\n"

func statsLine(px, sv string, qcur, scur int, status string) string {
	return px + "," + sv + "," + itoa(qcur) + ",0," + itoa(scur) + ",0,,0,0,0,,0,,0,0,0,0," + status + ",1,1,0\n"
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestParseStats(t *testing.T) {
	csv := statsHeader +
		statsLine("stats", "FRONTEND", 0, 1, "OPEN") +
		statsLine("web_10000", "10_0_0_1_31000", 0, 2, "UP") +
		statsLine("web_10000", "10_0_0_2_31001", 1, 0, "MAINT") +
		"garbage\n" +
		statsLine("web_10000", "BACKEND", 0, 2, "UP")
	rows, err := ParseStats(strings.NewReader(csv))
	require.NoError(t, err)
	assert.Equal(t, []StatRow{
		{Proxy: "web_10000", Server: "10_0_0_1_31000", Status: "UP", Sessions: 2},
		{Proxy: "web_10000", Server: "10_0_0_2_31001", Status: "MAINT", Queued: 1},
	}, rows)

	_, err = ParseStats(strings.NewReader("# pxname,svname\nx,y\n"))
	require.ErrorContains(t, err, `no "status" column`)
	_, err = ParseStats(strings.NewReader(""))
	require.Error(t, err)
}

func FuzzParseStats(f *testing.F) {
	f.Add([]byte(statsHeader + statsLine("web_10000", "a_1", 0, 0, "UP")))
	f.Add([]byte("# pxname,svname,status,scur,qcur\n\"x,y\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		rows, err := ParseStats(bytes.NewReader(b))
		if err != nil {
			return
		}
		for _, r := range rows {
			if r.Server == "FRONTEND" || r.Server == "BACKEND" || r.Server == "" {
				t.Fatalf("summary row returned: %+v", r)
			}
		}
	})
}

func TestBuildLBView(t *testing.T) {
	tk := func(id, host, ip string, port int) marathon.Task {
		t := marathon.Task{ID: id, Host: host, Ports: []int{port}, State: marathon.TaskRunning}
		if ip != "" {
			t.IPAddresses = []marathon.TaskIPAddress{{IPAddress: ip}}
		}
		return t
	}
	newApp := marathon.App{ID: "/web-green", Tasks: []marathon.Task{
		tk("n1", "10.0.0.1", "", 31005),
		tk("n2", "agent2", "10.0.0.2", 31006), // LB names it from its IP
		tk("n3", "agent3", "", 31007),         // resolved by DNS
	}}
	oldApp := marathon.App{ID: "/web-blue", Tasks: []marathon.Task{
		tk("o1", "10.0.0.1", "", 31000), // drained on both
		tk("o2", "10.0.0.1", "", 31001), // MAINT with a session on LB 2
		tk("o3", "10.0.0.1", "", 31002), // UP on LB 1
		tk("o4", "10.0.0.1", "", 31003), // gone from LB 1, drained on LB 2
	}}
	lb1 := []StatRow{
		{Proxy: "web_10000", Server: "10_0_0_1_31005", Status: "UP"},
		{Proxy: "web_10000", Server: "10_0_0_2_31006", Status: "UP"},
		{Proxy: "web_10000", Server: "10_0_0_3_31007", Status: "UP 1/2"},
		{Proxy: "web_10000", Server: "10_0_0_1_31000", Status: "MAINT"},
		{Proxy: "web_10000", Server: "10_0_0_1_31001", Status: "MAINT"},
		{Proxy: "web_10000", Server: "10_0_0_1_31002", Status: "UP"},
		{Proxy: "other_10000", Server: "10_0_0_1_31003", Status: "UP"},   // another backend: ignored
		{Proxy: "web_api_10000", Server: "10_0_0_1_31003", Status: "UP"}, // another group: ignored
	}
	lb2 := []StatRow{
		{Proxy: "web_10000", Server: "10_0_0_1_31005", Status: "UP"},
		{Proxy: "web_10000", Server: "10_0_0_2_31006", Status: "DOWN"},
		{Proxy: "web_10000", Server: "10_0_0_3_31007", Status: "UP"},
		{Proxy: "web_10000", Server: "10_0_0_1_31000", Status: "MAINT"},
		{Proxy: "web_10000", Server: "10_0_0_1_31001", Status: "MAINT", Sessions: 3},
		{Proxy: "web_10000", Server: "10_0_0_1_31002", Status: "MAINT"},
		{Proxy: "web_10000", Server: "10_0_0_1_31003", Status: "MAINT"},
	}
	resolve := func(h string) []string {
		if h == "agent3" {
			return []string{"10.0.0.3"}
		}
		return nil
	}
	v := BuildLBView([][]StatRow{lb1, lb2}, "/web", newApp, oldApp, resolve)
	assert.Equal(t, map[string]bool{"n1": true, "n2": false, "n3": true}, v.Up)
	assert.Equal(t, map[string]bool{"o1": true, "o2": false, "o3": false, "o4": true}, v.Drained)
	assert.Equal(t, map[string]bool{"o1": true, "o2": true, "o3": false, "o4": true}, v.Draining)

	none := BuildLBView(nil, "web", newApp, oldApp, resolve)
	assert.False(t, none.Up["n1"], "no LB shows nothing UP")
}
