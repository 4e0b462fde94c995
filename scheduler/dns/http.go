package dns

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// routes is Mesos-DNS's HTTP API.
func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/version", s.httpVersion)
	mux.HandleFunc("GET /v1/config", s.httpConfig)
	mux.HandleFunc("GET /v1/hosts/{host}", s.httpHost)
	mux.HandleFunc("GET /v1/hosts/{host}/ports", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "To be implemented...", http.StatusNotImplemented)
	})
	mux.HandleFunc("GET /v1/services/{service}", s.httpService)
	return mux
}

// ServeHTTP serves the /v1/ API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) httpVersion(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, map[string]string{
		"Service": "Mesos-DNS",
		"Version": s.cfg.Version,
		"URL":     "https://github.com/switchyard/switchyard",
	})
}

// httpConfig lists the configuration under Mesos-DNS's key names (the
// ones that mean something here).
func (s *Server) httpConfig(w http.ResponseWriter, _ *http.Request) {
	port := 0
	if addr := s.Addr(); addr != "" {
		_, port = splitPort(addr)
	} else if s.cfg.Addr != "" {
		_, port = splitPort(s.cfg.Addr)
	}
	listener := "0.0.0.0"
	if host, _ := splitPort(s.cfg.Addr); host != "" {
		listener = host
	}
	s.mu.Lock() // Listen may drop resolvers
	resolvers := append([]string{}, s.resolvers...)
	s.mu.Unlock()
	writeJSON(w, map[string]any{
		"Masters":                []string{},
		"Zk":                     "",
		"RefreshSeconds":         int(s.cfg.Refresh.Seconds()),
		"TTL":                    s.cfg.TTL,
		"SRVRecordDefaultWeight": 1,
		"Port":                   port,
		"Domain":                 s.cfg.Domain,
		"Resolvers":              resolvers,
		"Timeout":                int(s.cfg.Timeout.Seconds()),
		"Listener":               listener,
		"SOAMname":               "ns1." + s.domain,
		"SOARname":               "root.ns1." + s.domain,
		"SOARefresh":             60,
		"SOARetry":               600,
		"SOAExpire":              86400,
		"SOAMinttl":              s.cfg.TTL,
		"DnsOn":                  s.cfg.Addr != "",
		"HttpOn":                 true,
		"ExternalOn":             len(s.resolvers) > 0,
		"RecurseOn":              len(s.resolvers) > 0,
		"EnforceRFC952":          false,
		"IPSources":              []string{"netinfo", "host"},
		"EnumerationOn":          false,
	})
}

// fqdnOf lowers a name from a URL and makes it fully qualified.
func fqdnOf(name string) string {
	name = strings.ToLower(name)
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	return name
}

type hostRecord struct {
	Host string `json:"host"`
	IP   string `json:"ip"`
}

// httpHost is the A/AAAA lookup of a name: [{host, ip}], or one empty
// record when there is none (as Mesos-DNS answers).
func (s *Server) httpHost(w http.ResponseWriter, r *http.Request) {
	name := fqdnOf(r.PathValue("host"))
	out := []hostRecord{}
	if rs := s.tab.Load().t.names[name]; rs != nil {
		for _, ip := range rs.a {
			out = append(out, hostRecord{Host: name, IP: ip.String()})
		}
		for _, ip := range rs.aaaa {
			out = append(out, hostRecord{Host: name, IP: ip.String()})
		}
	}
	if len(out) == 0 {
		out = append(out, hostRecord{})
	}
	writeJSON(w, out)
}

type serviceRecord struct {
	Service string `json:"service"`
	Host    string `json:"host"`
	IP      string `json:"ip"`
	Port    string `json:"port"`
}

// httpService is the SRV lookup of a name: [{service, host, ip, port}],
// one per target address, or one empty record when there is none.
func (s *Server) httpService(w http.ResponseWriter, r *http.Request) {
	service := r.PathValue("service")
	t := s.tab.Load().t
	out := []serviceRecord{}
	if rs := t.names[fqdnOf(service)]; rs != nil {
		for _, srv := range rs.srv {
			port := strconv.Itoa(int(srv.port))
			if target := t.names[srv.target]; target != nil {
				if len(target.a) > 0 {
					out = append(out, serviceRecord{Service: service, Host: srv.target, IP: target.a[0].String(), Port: port})
				}
				if len(target.aaaa) > 0 {
					out = append(out, serviceRecord{Service: service, Host: srv.target, IP: target.aaaa[0].String(), Port: port})
				}
			}
		}
	}
	if len(out) == 0 {
		out = append(out, serviceRecord{})
	}
	writeJSON(w, out)
}
