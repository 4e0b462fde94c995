package dns

import (
	"net"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/stretchr/testify/require"
)

// recorder is a ResponseWriter that keeps what the handler writes.
type recorder struct {
	remote net.Addr
	msgs   []*mdns.Msg
}

func (r *recorder) LocalAddr() net.Addr  { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53} }
func (r *recorder) RemoteAddr() net.Addr { return r.remote }
func (r *recorder) WriteMsg(m *mdns.Msg) error {
	r.msgs = append(r.msgs, m)
	return nil
}
func (r *recorder) Write([]byte) (int, error) { panic("the handler writes messages, not bytes") }
func (r *recorder) Close() error              { return nil }
func (r *recorder) TsigStatus() error         { return nil }
func (r *recorder) TsigTimersOnly(bool)       {}
func (r *recorder) Hijack()                   {}

func pack(t testing.TB, m *mdns.Msg) []byte {
	b, err := m.Pack()
	require.NoError(t, err)
	return b
}

func question(name string, qtype uint16) *mdns.Msg {
	m := new(mdns.Msg)
	m.SetQuestion(name, qtype)
	return m
}

// fuzzSeeds are queries of every shape the handler should survive.
func fuzzSeeds(t testing.TB) [][]byte {
	edns := question("_web._tcp.marathon.mesos.", mdns.TypeSRV)
	edns.SetEdns0(65535, true)
	two := question("web.marathon.mesos.", mdns.TypeA)
	two.Question = append(two.Question, mdns.Question{Name: "example.com.", Qtype: mdns.TypeA, Qclass: mdns.ClassINET})
	none := question("web.marathon.mesos.", mdns.TypeA)
	none.Question = nil
	update := question("mesos.", mdns.TypeSOA)
	update.Opcode = mdns.OpcodeUpdate
	answer := question("web.marathon.mesos.", mdns.TypeA)
	answer.Response = true
	chaos := question("web.marathon.mesos.", mdns.TypeA)
	chaos.Question[0].Qclass = mdns.ClassCHAOS
	long := strings.Repeat(strings.Repeat("a", 63)+".", 3) + strings.Repeat("b", 55) + ".mesos."
	seeds := [][]byte{
		pack(t, question("web.marathon.mesos.", mdns.TypeA)),
		pack(t, question("WEB.marathon.mesos.", mdns.TypeAAAA)),
		pack(t, question("web.marathon.mesos.", mdns.TypeANY)),
		pack(t, question("mesos.", mdns.TypeANY)),
		pack(t, question("mesos.", mdns.TypeNS)),
		pack(t, question("nope.marathon.mesos.", mdns.TypeA)),
		pack(t, question("example.com.", mdns.TypeANY)),
		pack(t, question("mesos.example.com.", mdns.TypeA)),
		pack(t, question(`a\.mesos.`, mdns.TypeA)),
		pack(t, question(`web\046marathon.mesos.`, mdns.TypeA)),
		pack(t, question(".", mdns.TypeNS)),
		pack(t, question(long, mdns.TypeA)),
		pack(t, edns), pack(t, two), pack(t, none), pack(t, update), pack(t, answer), pack(t, chaos),
		{}, {0}, []byte("\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01"), // compression loop
	}
	return seeds
}

// checkReply runs one packet through the handler and checks the reply:
// never a panic, at most one reply, and nothing about names outside the
// domain (forwarding is off, so those are refused).
func checkReply(t *testing.T, s *Server, data []byte, overTCP bool) {
	req := new(mdns.Msg)
	if err := req.Unpack(data); err != nil {
		return // miekg/dns's server answers FORMERR or drops it before us
	}
	w := &recorder{remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 5353}}
	if overTCP {
		w.remote = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 5353}
	}
	s.ServeDNS(w, req)
	if req.Response {
		require.Empty(t, w.msgs, "an answer is never answered")
		return
	}
	require.Len(t, w.msgs, 1)
	m := w.msgs[0]
	require.Equal(t, req.Id, m.Id)
	require.True(t, m.Response)
	wire, err := m.Pack()
	require.NoError(t, err, "the reply must be packable")
	if !overTCP {
		limit := mdns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			limit = max(limit, int(opt.UDPSize()))
		}
		require.LessOrEqual(t, len(wire), limit)
	}
	if len(req.Question) != 1 || req.Opcode != mdns.OpcodeQuery {
		require.NotEqual(t, mdns.RcodeSuccess, m.Rcode)
		require.Empty(t, m.Answer)
		return
	}
	qname := strings.ToLower(req.Question[0].Name)
	owned := s.owns(qname)
	if !owned {
		require.Equal(t, mdns.RcodeRefused, m.Rcode, "not ours, no upstream: %q", qname)
	}
	for _, sec := range [][]mdns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			if rr.Header().Rrtype == mdns.TypeOPT {
				continue
			}
			require.True(t, s.owns(strings.ToLower(rr.Header().Name)), "record for a name not ours: %s (question %q)", rr, qname)
		}
	}
	for _, rr := range m.Answer {
		require.True(t, strings.EqualFold(rr.Header().Name, req.Question[0].Name), "answer %s for question %q", rr, qname)
	}
}

func newFuzzServer(t testing.TB) *Server {
	s, err := New(Config{Logger: quietLogger(), LookupHost: fakeLookup})
	require.NoError(t, err)
	s.install(build(s.domain, "marathon", testSnapshot(), ips("127.0.0.1")))
	return s
}

func FuzzServeDNS(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	s := newFuzzServer(f)
	f.Fuzz(func(t *testing.T, data []byte, overTCP bool) {
		checkReply(t, s, data, overTCP)
	})
}

// TestMalformedPackets sends garbage to the running server, then checks
// that it still answers.
func TestMalformedPackets(t *testing.T) {
	s := startServer(t, Config{}, newFakeSource(testSnapshot()))
	conn, err := net.Dial("udp", s.Addr())
	require.NoError(t, err)
	defer conn.Close()
	garbage := [][]byte{{}, {0xff}, make([]byte, 12), make([]byte, 4096), []byte("GET / HTTP/1.1\r\n\r\n")}
	for _, seed := range fuzzSeeds(t) {
		garbage = append(garbage, seed, seed[:len(seed)/2])
	}
	for _, g := range garbage {
		_, err := conn.Write(g)
		require.NoError(t, err)
	}
	// A huge TCP query: a name of 255 bytes and many questions.
	tc, err := net.Dial("tcp", s.Addr())
	require.NoError(t, err)
	big := question(strings.Repeat("x.", 120)+"mesos.", mdns.TypeA)
	for range 500 {
		big.Question = append(big.Question, big.Question[0])
	}
	wire := pack(t, big)
	_, err = tc.Write(append([]byte{byte(len(wire) >> 8), byte(len(wire))}, wire...))
	require.NoError(t, err)
	_ = tc.SetReadDeadline(time.Now().Add(5 * time.Second))
	reply, err := (&mdns.Conn{Conn: tc}).ReadMsg()
	require.NoError(t, err)
	require.Equal(t, mdns.RcodeFormatError, reply.Rcode, "501 questions are refused as malformed")
	_ = tc.Close()

	r := query(t, s.Addr(), "udp", "web.marathon.mesos.", mdns.TypeA)
	require.Len(t, r.Answer, 2)
}

func TestSeedsAnswered(t *testing.T) {
	s := newFuzzServer(t)
	for _, seed := range fuzzSeeds(t) {
		checkReply(t, s, seed, false)
		checkReply(t, s, seed, true)
	}
}
