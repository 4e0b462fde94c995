package haproxy

import (
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	parser "github.com/haproxytech/config-parser/v5"
	"github.com/haproxytech/config-parser/v5/common"
	"github.com/haproxytech/config-parser/v5/options"
	"github.com/haproxytech/config-parser/v5/parsers"
	"github.com/haproxytech/config-parser/v5/types"
)

// Server is one `server` line of a backend section.
type Server struct {
	Backend string
	Name    string
	// Address is the host part of the address: an IP literal for servers the
	// runtime API can manage, otherwise the address text as written.
	Address string
	Port    int // 0 when the line has no plain numeric port
	// Options is the rest of the line, words separated by one space, e.g.
	// "check inter 20s fall 4 weight 2". In the servers of a Change, Diff
	// puts the applicable default-server settings in front (HAProxy does not
	// apply default-server to servers added at runtime).
	Options string
}

// sectionKinds are the keywords that open a section.
var sectionKinds = map[string]bool{
	"global": true, "defaults": true, "frontend": true, "backend": true, "listen": true,
	"userlist": true, "peers": true, "resolvers": true, "mailers": true, "program": true,
	"http-errors": true, "ring": true, "cache": true, "log-forward": true, "fcgi-app": true,
}

// section is one normalised configuration section.
type section struct {
	kind, name string
	header     string   // normalised header line, e.g. "backend foo from base"
	from       string   // explicit "from <defaults>" of the header
	lines      []string // normalised body lines, without the servers of a backend
	servers    []Server // backend sections only, in file order
	defaults   int      // index of the defaults section it inherits from, or -1
}

func (s *section) label() string {
	if s.name == "" {
		return s.kind
	}
	return s.kind + " " + s.name
}

// Parsed is a configuration split into sections, with comments and blank
// lines dropped and whitespace normalised. It is immutable once returned by
// [Parse] and safe for concurrent reads.
type Parsed struct {
	sections []section
	index    map[string]int // kind+" "+name -> position in sections
}

// Backends returns the backend section names in file order.
func (p *Parsed) Backends() []string {
	var out []string
	for i := range p.sections {
		if p.sections[i].kind == "backend" {
			out = append(out, p.sections[i].name)
		}
	}
	return out
}

// Servers returns a copy of the servers of backend, in file order (nil when
// there is no such backend).
func (p *Parsed) Servers(backend string) []Server {
	i, ok := p.index["backend "+backend]
	if !ok {
		return nil
	}
	return append([]Server(nil), p.sections[i].servers...)
}

// Parse splits cfg into sections and servers and cross-checks the result with
// github.com/haproxytech/config-parser. It returns an error wrapping
// [ErrSyntax] for text outside any section, a section without a name, a
// duplicate section, or a `server` line it cannot parse. It does not replace
// `haproxy -c` ([Check]), which knows every keyword.
func Parse(cfg []byte) (*Parsed, error) {
	p, err := splitSections(cfg)
	if err != nil {
		return nil, err
	}
	if err := crossCheck(cfg, p); err != nil {
		return nil, err
	}
	return p, nil
}

func splitSections(cfg []byte) (*Parsed, error) {
	p := &Parsed{index: map[string]int{}}
	cur := -1
	lastDefaults := -1
	namedDefaults := map[string]int{}
	lineNo := 0
	for raw := range strings.Lines(string(cfg)) {
		lineNo++
		words := splitWords(raw)
		if len(words) == 0 {
			continue
		}
		line := strings.Join(words, " ")
		if sectionKinds[words[0]] {
			s := section{kind: words[0], header: line, defaults: -1}
			if len(words) > 1 {
				s.name = words[1]
			}
			for i := 2; i+1 < len(words); i++ {
				if words[i] == "from" {
					s.from = words[i+1]
				}
			}
			switch s.kind {
			case "global":
			case "defaults":
				if s.name == "from" {
					s.name = "" // "defaults from x" is an unnamed section
				}
			default:
				if s.name == "" {
					return nil, fmt.Errorf("%w: line %d: %s section without a name", ErrSyntax, lineNo, s.kind)
				}
			}
			switch s.kind {
			case "frontend", "backend", "listen":
				s.defaults = lastDefaults
				if s.from != "" {
					d, ok := namedDefaults[s.from]
					if !ok {
						return nil, fmt.Errorf("%w: line %d: %s: unknown defaults section %q", ErrSyntax, lineNo, s.label(), s.from)
					}
					s.defaults = d
				}
			}
			key := s.kind + " " + s.name
			if _, dup := p.index[key]; dup && s.kind != "global" && !(s.kind == "defaults" && s.name == "") {
				return nil, fmt.Errorf("%w: line %d: duplicate %s", ErrSyntax, lineNo, s.label())
			}
			p.sections = append(p.sections, s)
			cur = len(p.sections) - 1
			if s.kind == "defaults" {
				lastDefaults = cur
				if s.name != "" {
					namedDefaults[s.name] = cur
				}
			}
			// Unnamed defaults and repeated global sections get a unique key.
			if _, dup := p.index[key]; dup {
				key += "#" + strconv.Itoa(cur)
			}
			p.index[key] = cur
			continue
		}
		if cur < 0 {
			return nil, fmt.Errorf("%w: line %d: %q is outside of any section", ErrSyntax, lineNo, line)
		}
		s := &p.sections[cur]
		if s.kind == "backend" && words[0] == "server" {
			srv, err := parseServer(s.name, words)
			if err != nil {
				return nil, fmt.Errorf("%w: line %d: %v", ErrSyntax, lineNo, err)
			}
			for _, o := range s.servers {
				if o.Name == srv.Name {
					return nil, fmt.Errorf("%w: line %d: %s: duplicate server %q", ErrSyntax, lineNo, s.label(), srv.Name)
				}
			}
			s.servers = append(s.servers, srv)
			continue
		}
		s.lines = append(s.lines, line)
	}
	return p, nil
}

// checkServerLine parses the server line of s with config-parser's own
// `server` parser and verifies it reads the same name and address. Diff runs
// it on every server it turns into a runtime operation (cheap, unlike a full
// config-parser pass over a large configuration).
func checkServerLine(s Server) error {
	addr := s.Address
	if s.Port > 0 {
		if ip, err := netip.ParseAddr(s.Address); err == nil {
			addr = netip.AddrPortFrom(ip, uint16(s.Port)).String()
		} else {
			addr = s.Address + ":" + strconv.Itoa(s.Port)
		}
	}
	line := strings.TrimSpace("server " + s.Name + " " + addr + " " + s.Options)
	parts, comment := common.StringSplitWithCommentIgnoreEmpty(line)
	var sp parsers.Server
	sp.Init()
	if _, err := sp.Parse(line, parts, comment); err != nil {
		return fmt.Errorf("%w: backend %s: config-parser: %v", ErrSyntax, s.Backend, err)
	}
	data, err := sp.Get(false)
	if err != nil {
		return fmt.Errorf("%w: backend %s: config-parser: %v", ErrSyntax, s.Backend, err)
	}
	got, ok := data.([]types.Server)
	if !ok || len(got) != 1 || got[0].Name != s.Name {
		return fmt.Errorf("%w: backend %s: config-parser reads server line %q differently", ErrSyntax, s.Backend, line)
	}
	if h, p := splitHostPort(got[0].Address); h != s.Address || p != s.Port {
		return fmt.Errorf("%w: backend %s: config-parser reads the address of server %s as %q", ErrSyntax, s.Backend, s.Name, got[0].Address)
	}
	return nil
}

// parseServer parses the words of a `server <name> <addr> [options]` line.
func parseServer(backend string, words []string) (Server, error) {
	if len(words) < 3 {
		return Server{}, fmt.Errorf("backend %s: server line needs a name and an address", backend)
	}
	host, port := splitHostPort(words[2])
	return Server{
		Backend: backend,
		Name:    words[1],
		Address: host,
		Port:    port,
		Options: strings.Join(words[3:], " "),
	}, nil
}

// splitHostPort splits "ip:port" and "[ipv6]:port". Anything else (a port
// range or offset, a socket prefix, a missing port) is returned whole with
// port 0.
func splitHostPort(addr string) (string, int) {
	if ap, err := netip.ParseAddrPort(addr); err == nil && ap.Port() != 0 {
		return ap.Addr().String(), int(ap.Port())
	}
	i := strings.LastIndexByte(addr, ':')
	if i <= 0 || strings.Contains(addr[:i], ":") || strings.Contains(addr[:i], "@") {
		return addr, 0
	}
	port, err := strconv.Atoi(addr[i+1:])
	if err != nil || port <= 0 || port > 65535 || addr[i+1] == '+' {
		return addr, 0
	}
	return addr[:i], port
}

// splitWords splits a configuration line into words the way HAProxy does
// for comparison purposes: blanks separate words, quotes and backslashes
// protect blanks and '#', and an unprotected '#' starts a comment. Words keep
// their quotes and escapes, so two lines compare equal only if HAProxy reads
// them the same.
func splitWords(line string) []string {
	if !strings.ContainsAny(line, "\"'\\#") {
		// Fast path: nothing is protected.
		if w := strings.FieldsFunc(line, isBlank); len(w) > 0 {
			return w
		}
		return nil
	}
	var words []string
	var cur strings.Builder
	inWord := false
	var quote byte
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0:
			cur.WriteByte(c)
			if c == '\\' && quote == '"' && i+1 < len(line) {
				i++
				cur.WriteByte(line[i])
			} else if c == quote {
				quote = 0
			}
		case c == '\\' && i+1 < len(line):
			cur.WriteByte(c)
			i++
			cur.WriteByte(line[i])
			inWord = true
		case c == '"' || c == '\'':
			quote = c
			cur.WriteByte(c)
			inWord = true
		case c == '#':
			if inWord {
				words = append(words, cur.String())
			}
			return words
		case isBlank(rune(c)):
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord || cur.Len() > 0 {
		words = append(words, cur.String())
	}
	return words
}

// isBlank reports whether r separates words (HAProxy splits on spaces and
// tabs; line ends are blanks too).
func isBlank(r rune) bool { return r == ' ' || r == '\t' || r == '\r' || r == '\n' }

// configParserMu serialises calls into config-parser, whose Process writes
// the package-level variable parser.DefaultSectionName (a data race when two
// goroutines parse at once). It guards no state of ours.
var configParserMu sync.Mutex

// crossCheck parses cfg with config-parser and verifies that it sees the same
// backends and server names as splitSections, so that a line one of them
// misreads cannot turn into a wrong runtime operation.
func crossCheck(cfg []byte, p *Parsed) error {
	configParserMu.Lock()
	defer configParserMu.Unlock()
	cp, err := parser.New(options.Reader(bytes.NewReader(cfg)))
	if err != nil {
		return fmt.Errorf("%w: config-parser: %v", ErrSyntax, err)
	}
	backends, err := cp.SectionsGet(parser.Backends)
	if err != nil {
		backends = nil
	}
	want := p.Backends()
	if len(backends) != len(want) {
		return fmt.Errorf("%w: config-parser sees %d backends, expected %d", ErrSyntax, len(backends), len(want))
	}
	for _, b := range want {
		servers := p.sections[p.index["backend "+b]].servers
		data, err := cp.Get(parser.Backends, b, "server")
		var got []types.Server
		switch {
		case err == nil:
			v, ok := data.([]types.Server)
			if !ok {
				return fmt.Errorf("%w: backend %s: unexpected config-parser server data %T", ErrSyntax, b, data)
			}
			got = v
		case len(servers) == 0:
		default:
			return fmt.Errorf("%w: backend %s: config-parser: %v", ErrSyntax, b, err)
		}
		if len(got) != len(servers) {
			return fmt.Errorf("%w: backend %s: config-parser sees %d servers, expected %d", ErrSyntax, b, len(got), len(servers))
		}
		for i := range got {
			if got[i].Name != servers[i].Name {
				return fmt.Errorf("%w: backend %s: config-parser reads server %q as %q", ErrSyntax, b, servers[i].Name, got[i].Name)
			}
		}
	}
	return nil
}
