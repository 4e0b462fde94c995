package haproxy

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// baseCfg is a small marathon-lb-like configuration; tests derive variants
// from it with strings.Replace.
const baseCfg = `global
  daemon
  log /dev/log local0
  maxconn 4096
  stats socket /var/run/haproxy/socket expose-fd listeners level admin

defaults
  mode http
  balance roundrobin
  timeout connect 5s
  timeout client 30s
  timeout server 30s

frontend marathon_http_in
  bind *:80
  mode http
  acl host_www_example_com hdr(host) -i www.example.com
  use_backend web_10240 if host_www_example_com

frontend web_10240
  bind *:10240
  mode http
  use_backend web_10240

# the app's backend
backend web_10240
  balance roundrobin
  mode http
  option forwardfor
  option httpchk GET /health
  server 10_0_0_1_31001 10.0.0.1:31001 check inter 2s fall 3
  server 10_0_0_2_31002 10.0.0.2:31002 check inter 2s fall 3

backend tcp_10250
  balance leastconn
  mode tcp
  server 10_0_0_3_31003 10.0.0.3:31003 check inter 2s fall 3
`

func variant(t *testing.T, old, new string) string {
	t.Helper()
	require.Contains(t, baseCfg, old, "variant base text")
	return strings.Replace(baseCfg, old, new, 1)
}

func srv(backend, name, addr string, port int, opts string) Server {
	return Server{Backend: backend, Name: name, Address: addr, Port: port, Options: opts}
}

func TestDiff(t *testing.T) {
	const s1 = "  server 10_0_0_1_31001 10.0.0.1:31001 check inter 2s fall 3\n"
	tests := []struct {
		name string
		old  string
		new  string
		want Change
	}{
		{name: "identical", old: baseCfg, new: baseCfg, want: Change{}},
		{name: "initial start", old: "", new: baseCfg, want: Change{Reload: true, Reason: "initial start"}},
		{
			name: "comments, blank lines and whitespace only",
			old:  baseCfg,
			new:  "# generated\n\n" + strings.ReplaceAll(variant(t, "option forwardfor", "option   forwardfor   # keep"), "\n", "\n\n"),
			want: Change{},
		},
		{
			name: "server added",
			old:  baseCfg,
			new:  variant(t, s1, s1+"  server 10_0_0_9_31009 10.0.0.9:31009 check inter 2s fall 3\n"),
			want: Change{Add: []Server{srv("web_10240", "10_0_0_9_31009", "10.0.0.9", 31009, "check inter 2s fall 3")}},
		},
		{
			name: "server removed",
			old:  baseCfg,
			new:  variant(t, s1, ""),
			want: Change{Remove: []Server{srv("web_10240", "10_0_0_1_31001", "10.0.0.1", 31001, "check inter 2s fall 3")}},
		},
		{
			name: "server replaced (task moved)",
			old:  baseCfg,
			new:  variant(t, s1, "  server 10_0_0_7_31007 10.0.0.7:31007 check inter 2s fall 3\n"),
			want: Change{
				Add:    []Server{srv("web_10240", "10_0_0_7_31007", "10.0.0.7", 31007, "check inter 2s fall 3")},
				Remove: []Server{srv("web_10240", "10_0_0_1_31001", "10.0.0.1", 31001, "check inter 2s fall 3")},
			},
		},
		{
			name: "server address changed under the same name",
			old:  baseCfg,
			new:  variant(t, "10.0.0.1:31001 check", "10.0.0.8:31008 check"),
			want: Change{Update: []Server{srv("web_10240", "10_0_0_1_31001", "10.0.0.8", 31008, "check inter 2s fall 3")}},
		},
		{
			name: "weight change",
			old:  baseCfg,
			new:  variant(t, "31001 check inter 2s fall 3", "31001 check inter 2s fall 3 weight 5"),
			want: Change{Update: []Server{srv("web_10240", "10_0_0_1_31001", "10.0.0.1", 31001, "check inter 2s fall 3 weight 5")}},
		},
		{
			name: "servers reordered",
			old:  baseCfg,
			new: variant(t, s1+"  server 10_0_0_2_31002 10.0.0.2:31002 check inter 2s fall 3\n",
				"  server 10_0_0_2_31002 10.0.0.2:31002 check inter 2s fall 3\n"+s1),
			want: Change{},
		},
		{
			name: "server options changed",
			old:  baseCfg,
			new:  variant(t, "31001 check inter 2s fall 3", "31001 check inter 5s fall 3"),
			want: Change{Reload: true, Reason: "backend web_10240: server 10_0_0_1_31001: options changed"},
		},
		{
			name: "backend option changed",
			old:  baseCfg,
			new:  variant(t, "option httpchk GET /health", "option httpchk GET /ping"),
			want: Change{Reload: true, Reason: "backend web_10240: option httpchk changed"},
		},
		{
			name: "backend option added",
			old:  baseCfg,
			new:  variant(t, "  option forwardfor\n", "  option forwardfor\n  option http-server-close\n"),
			want: Change{Reload: true, Reason: "backend web_10240: option http-server-close added"},
		},
		{
			name: "new frontend",
			old:  baseCfg,
			new:  baseCfg + "\nfrontend api_10260\n  bind *:10260\n  use_backend tcp_10250\n",
			want: Change{Reload: true, Reason: "frontend api_10260 added"},
		},
		{
			name: "backend removed",
			old:  baseCfg,
			new:  baseCfg[:strings.Index(baseCfg, "backend tcp_10250")],
			want: Change{Reload: true, Reason: "backend tcp_10250 removed"},
		},
		{
			name: "global changed",
			old:  baseCfg,
			new:  variant(t, "maxconn 4096", "maxconn 8192"),
			want: Change{Reload: true, Reason: "global: maxconn changed"},
		},
		{
			name: "server added with cookie",
			old:  baseCfg,
			new:  variant(t, s1, s1+"  server 10_0_0_9_31009 10.0.0.9:31009 check cookie abc\n"),
			want: Change{Reload: true, Reason: `backend web_10240: server 10_0_0_9_31009: "cookie" is not supported by add server`},
		},
		{
			name: "server added by host name",
			old:  baseCfg,
			new:  variant(t, s1, s1+"  server web9 web9.example.com:31009 check\n"),
			want: Change{Reload: true, Reason: `backend web_10240: server web9: address "web9.example.com" is not an IP literal (dynamic servers are not resolved)`},
		},
		{
			name: "server added to a static-rr backend",
			old:  variant(t, "balance leastconn", "balance static-rr"),
			new: variant(t, "balance leastconn\n  mode tcp\n", "balance static-rr\n  mode tcp\n"+
				"  server 10_0_0_4_31004 10.0.0.4:31004\n"),
			want: Change{Reload: true, Reason: "backend tcp_10250: servers changed and balance static-rr does not support runtime server changes"},
		},
		{
			name: "server added to a source-hash backend",
			old:  variant(t, "balance leastconn", "balance source"),
			new: variant(t, "balance leastconn\n  mode tcp\n", "balance source\n  mode tcp\n"+
				"  server 10_0_0_4_31004 10.0.0.4:31004\n"),
			want: Change{Reload: true, Reason: "backend tcp_10250: servers changed and balance source does not support runtime server changes"},
		},
		{
			name: "server added to a consistent-hash backend",
			old:  variant(t, "balance leastconn", "balance uri\n  hash-type consistent"),
			new: variant(t, "balance leastconn\n  mode tcp\n", "balance uri\n  hash-type consistent\n  mode tcp\n"+
				"  server 10_0_0_4_31004 10.0.0.4:31004\n"),
			want: Change{Add: []Server{srv("tcp_10250", "10_0_0_4_31004", "10.0.0.4", 31004, "")}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Diff([]byte(tc.old), []byte(tc.new))
			require.NoError(t, err)
			assert.Equal(t, tc.want, got, "Diff(old, new)")
		})
	}
}

func TestDiffDefaultServer(t *testing.T) {
	const s3 = "  server 10_0_0_3_31003 10.0.0.3:31003 check inter 2s fall 3\n"
	tests := []struct {
		name     string
		defaults string // default-server line(s) of the defaults section
		backend  string // default-server line(s) of backend tcp_10250
		added    string // options of the added server
		want     Change
	}{
		{
			name:     "settings merged into the added server",
			defaults: "  default-server inter 3s fall 2\n",
			added:    "check",
			want:     Change{Add: []Server{srv("tcp_10250", "10_0_0_4_31004", "10.0.0.4", 31004, "inter 3s fall 2 check")}},
		},
		{
			name:     "the server line wins",
			defaults: "  default-server inter 3s fall 2\n",
			added:    "check inter 1s",
			want:     Change{Add: []Server{srv("tcp_10250", "10_0_0_4_31004", "10.0.0.4", 31004, "fall 2 check inter 1s")}},
		},
		{
			name:     "defaults then backend",
			defaults: "  default-server inter 3s\n",
			backend:  "  default-server check weight 2\n",
			want:     Change{Add: []Server{srv("tcp_10250", "10_0_0_4_31004", "10.0.0.4", 31004, "inter 3s check weight 2")}},
		},
		{
			name:     "resolution settings are irrelevant for an IP",
			defaults: "  default-server init-addr last,libc,none\n",
			added:    "check inter 2s",
			want:     Change{Add: []Server{srv("tcp_10250", "10_0_0_4_31004", "10.0.0.4", 31004, "check inter 2s")}},
		},
		{
			name:     "setting add server does not accept",
			defaults: "  default-server source 10.0.0.1\n",
			want:     Change{Reload: true, Reason: `backend tcp_10250: server 10_0_0_4_31004: default-server "source" is not supported by add server`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			old := variant(t, "  timeout server 30s\n", "  timeout server 30s\n"+tc.defaults)
			old = strings.Replace(old, "  balance leastconn\n", "  balance leastconn\n"+tc.backend, 1)
			added := strings.TrimSpace("  server 10_0_0_4_31004 10.0.0.4:31004 " + tc.added)
			new := strings.Replace(old, s3, s3+"  "+added+"\n", 1)
			got, err := Diff([]byte(old), []byte(new))
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}

	// Removing a server works whatever default-server says.
	old := variant(t, "  timeout server 30s\n", "  timeout server 30s\n  default-server source 10.0.0.1\n")
	got, err := Diff([]byte(old), []byte(strings.Replace(old, s3, "", 1)))
	require.NoError(t, err)
	assert.Equal(t, Change{Remove: []Server{srv("tcp_10250", "10_0_0_3_31003", "10.0.0.3", 31003, "check inter 2s fall 3")}}, got)
}

func TestDiffErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  string
	}{
		{name: "line outside sections", cfg: "maxconn 10\nglobal\n"},
		{name: "backend without name", cfg: "backend\n  server a 1.2.3.4:80\n"},
		{name: "duplicate backend", cfg: "backend a\nbackend a\n"},
		{name: "duplicate server", cfg: "backend a\n  server s 1.2.3.4:80\n  server s 1.2.3.5:80\n"},
		{name: "server without address", cfg: "backend a\n  server s\n"},
		{name: "unknown defaults", cfg: "backend a from nope\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Diff([]byte(baseCfg), []byte(tc.cfg))
			require.ErrorIs(t, err, ErrSyntax, "Diff(base, %q)", tc.cfg)
			_, err = Diff([]byte(tc.cfg), []byte(baseCfg))
			require.ErrorIs(t, err, ErrSyntax, "Diff(%q, base)", tc.cfg)
		})
	}
}

func TestParseServers(t *testing.T) {
	p, err := Parse([]byte(baseCfg + "backend v6\n  server a [::1]:8080 weight 2\n  server b 127.0.0.1:+10\n"))
	require.NoError(t, err)
	assert.Equal(t, []string{"web_10240", "tcp_10250", "v6"}, p.Backends())
	assert.Equal(t, []Server{
		srv("v6", "a", "::1", 8080, "weight 2"),
		srv("v6", "b", "127.0.0.1:+10", 0, ""),
	}, p.Servers("v6"))
	assert.Nil(t, p.Servers("nope"))
}

func TestSplitWords(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"  option  httpchk GET /  ", []string{"option", "httpchk", "GET", "/"}},
		{"acl a path_beg /x # comment", []string{"acl", "a", "path_beg", "/x"}},
		{`http-request set-header X "a # b"`, []string{"http-request", "set-header", "X", `"a # b"`}},
		{`errorfile 503 /a\ b#c`, []string{"errorfile", "503", `/a\ b`}}, // HAProxy: # starts a comment even inside a word
		{"# only a comment", nil},
		{"\t", nil},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, splitWords(tc.in), "splitWords(%q)", tc.in)
	}
}

func TestToRuntime(t *testing.T) {
	tests := []struct {
		name    string
		opts    string
		want    runtimeServer
		wantErr string
	}{
		{name: "plain", opts: "", want: runtimeServer{weight: 1}},
		{name: "checked", opts: "check inter 2s fall 3 weight 2",
			want: runtimeServer{args: "check inter 2s fall 3 weight 2", check: true, weight: 2}},
		{name: "ssl implies check-ssl", opts: "ssl verify none check",
			want: runtimeServer{args: "ssl verify none check check-ssl", check: true, weight: 1}},
		{name: "ssl with check port keeps plain check", opts: "ssl verify none check port 81",
			want: runtimeServer{args: "ssl verify none check port 81", check: true, weight: 1}},
		{name: "send-proxy implies check-send-proxy", opts: "send-proxy check",
			want: runtimeServer{args: "send-proxy check check-send-proxy", check: true, weight: 1}},
		{name: "disabled", opts: "disabled", want: runtimeServer{args: "disabled", disabled: true, weight: 1}},
		{name: "agent", opts: "agent-check agent-port 9999",
			want: runtimeServer{args: "agent-check agent-port 9999", agent: true, weight: 1}},
		{name: "cookie", opts: "check cookie x", wantErr: `"cookie" is not supported`},
		{name: "missing argument", opts: "check inter", wantErr: `"inter" needs an argument`},
		{name: "bad weight", opts: "weight heavy", wantErr: "bad weight"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := toRuntime(srv("b", "s", "127.0.0.1", 80, tc.opts))
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got, "toRuntime(%q)", tc.opts)
		})
	}
}

func FuzzDiff(f *testing.F) {
	f.Add([]byte(baseCfg), []byte(baseCfg))
	f.Add([]byte(baseCfg), []byte(strings.Replace(baseCfg, "10.0.0.1:31001", "10.0.0.5:31005", 1)))
	f.Add([]byte("global\n"), []byte("backend a\n server s 1.2.3.4:80 weight 3 # c\n"))
	f.Add([]byte("backend b\n server \"x y\" [::1]:80\n"), []byte("defaults d\nbackend b from d\n balance source\n"))
	f.Add([]byte("frontend f\n bind :80\n"), []byte("frontend f\n bind :80 'a # b'\\\n"))
	f.Fuzz(func(t *testing.T, old, new []byte) {
		ch, err := Diff(old, new)
		if err != nil {
			return
		}
		if ch.Reload {
			assert.NotEmpty(t, ch.Reason, "a reload always has a reason")
			assert.Empty(t, ch.Add, "no runtime ops with a reload")
		}
		// A configuration never differs from itself.
		self, err := Diff(new, new)
		require.NoError(t, err, "Diff(new, new) after Diff(old, new) succeeded")
		assert.True(t, self.IsZero() || self.Reason == "initial start", "Diff(new, new) = %v", self)
		// Every server to add can really be added at runtime.
		for _, s := range ch.Add {
			_, err := toRuntime(s)
			assert.NoError(t, err, "added server %+v", s)
		}
	})
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(baseCfg))
	f.Add([]byte("defaults d\nbackend b from d\n server s [::1]:80 check\n server t unix@/x.sock\n"))
	f.Add([]byte("global\n  log \"a # b\" local0\nbackend b\n  server s 10.0.0.1:+5 # c\n"))
	f.Fuzz(func(t *testing.T, cfg []byte) {
		p, err := Parse(cfg)
		if err != nil {
			require.ErrorIs(t, err, ErrSyntax, "Parse errors wrap ErrSyntax")
			return
		}
		for _, b := range p.Backends() {
			for _, s := range p.Servers(b) {
				assert.Equal(t, b, s.Backend, "server %+v belongs to its backend", s)
				assert.NotEmpty(t, s.Name)
			}
		}
	})
}
