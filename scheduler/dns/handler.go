package dns

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"

	mdns "github.com/miekg/dns"
)

// ServeDNS answers one query: names in the domain from the table, others
// through the upstream resolvers. A panic answers SERVFAIL instead of
// ending the server.
func (s *Server) ServeDNS(w mdns.ResponseWriter, r *mdns.Msg) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("dns: query handler panicked", "panic", fmt.Sprint(p))
			m := new(mdns.Msg)
			m.SetRcode(r, mdns.RcodeServerFailure)
			_ = w.WriteMsg(m)
		}
	}()
	if r.Response {
		return // never answer an answer
	}
	if r.Opcode != mdns.OpcodeQuery {
		s.fail(w, r, mdns.RcodeNotImplemented, "notimp")
		return
	}
	if len(r.Question) != 1 {
		s.fail(w, r, mdns.RcodeFormatError, "formerr")
		return
	}
	q := r.Question[0]
	name := strings.ToLower(q.Name)
	if !s.owns(name) {
		s.forward(w, r)
		return
	}
	if q.Qclass != mdns.ClassINET && q.Qclass != mdns.ClassANY {
		s.fail(w, r, mdns.RcodeRefused, "refused")
		return
	}
	m := s.answer(r, name)
	s.metrics.queries.WithLabelValues("local", mdns.RcodeToString[m.Rcode]).Inc()
	s.reply(w, r, m)
}

// owns reports whether name lies in our domain (name is lower case).
func (s *Server) owns(name string) bool {
	if name != s.domain && !strings.HasSuffix(name, "."+s.domain) {
		return false
	}
	// A name with escapes ("a\.mesos.") may end in ".mesos." without
	// being below it: let miekg/dns count the labels.
	return !strings.Contains(name, `\`) || mdns.IsSubDomain(s.domain, name)
}

// fail answers with rcode and nothing else.
func (s *Server) fail(w mdns.ResponseWriter, r *mdns.Msg, rcode int, what string) {
	s.metrics.queries.WithLabelValues("bad", what).Inc()
	m := new(mdns.Msg)
	m.SetRcode(r, rcode)
	s.reply(w, r, m)
}

// answer builds the authoritative reply for a name of the domain.
func (s *Server) answer(r *mdns.Msg, name string) *mdns.Msg {
	snap := s.tab.Load()
	t := snap.t
	q := r.Question[0]
	m := new(mdns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	m.RecursionAvailable = len(s.resolvers) > 0
	rs := t.names[name]
	apex := name == s.domain
	hdr := func(rtype uint16) mdns.RR_Header {
		return mdns.RR_Header{Name: q.Name, Rrtype: rtype, Class: mdns.ClassINET, Ttl: s.cfg.TTL}
	}
	all := q.Qtype == mdns.TypeANY
	if rs != nil && (all || q.Qtype == mdns.TypeA) {
		for _, ip := range rs.a {
			m.Answer = append(m.Answer, &mdns.A{Hdr: hdr(mdns.TypeA), A: ip.AsSlice()})
		}
	}
	if rs != nil && (all || q.Qtype == mdns.TypeAAAA) {
		for _, ip := range rs.aaaa {
			m.Answer = append(m.Answer, &mdns.AAAA{Hdr: hdr(mdns.TypeAAAA), AAAA: ip.AsSlice()})
		}
	}
	if rs != nil && (all || q.Qtype == mdns.TypeSRV) {
		seen := map[string]bool{}
		for _, srv := range rs.srv {
			m.Answer = append(m.Answer, &mdns.SRV{Hdr: hdr(mdns.TypeSRV), Priority: 0, Weight: 1, Port: srv.port, Target: srv.target})
			if !seen[srv.target] {
				seen[srv.target] = true
				m.Extra = append(m.Extra, s.addresses(t, srv.target)...)
			}
		}
	}
	if apex && (all || q.Qtype == mdns.TypeSOA) {
		m.Answer = append(m.Answer, s.soa(q.Name, snap.serial))
	}
	if apex && (all || q.Qtype == mdns.TypeNS) {
		m.Answer = append(m.Answer, &mdns.NS{Hdr: hdr(mdns.TypeNS), Ns: "ns1." + s.domain})
		m.Extra = append(m.Extra, s.addresses(t, "ns1."+s.domain)...)
	}
	if len(m.Answer) == 0 {
		_, ent := t.ents[name]
		if rs == nil && !ent && !apex {
			m.Rcode = mdns.RcodeNameError
		}
		m.Ns = append(m.Ns, s.soa(s.domain, snap.serial))
		return m
	}
	rand.Shuffle(len(m.Answer), func(i, j int) { m.Answer[i], m.Answer[j] = m.Answer[j], m.Answer[i] })
	return m
}

// addresses are the A and AAAA records of a name of the table.
func (s *Server) addresses(t *table, name string) []mdns.RR {
	rs := t.names[name]
	if rs == nil {
		return nil
	}
	out := make([]mdns.RR, 0, len(rs.a)+len(rs.aaaa))
	for _, ip := range rs.a {
		out = append(out, &mdns.A{Hdr: mdns.RR_Header{Name: name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: s.cfg.TTL}, A: ip.AsSlice()})
	}
	for _, ip := range rs.aaaa {
		out = append(out, &mdns.AAAA{Hdr: mdns.RR_Header{Name: name, Rrtype: mdns.TypeAAAA, Class: mdns.ClassINET, Ttl: s.cfg.TTL}, AAAA: ip.AsSlice()})
	}
	return out
}

// soa is the domain's SOA record (Mesos-DNS's defaults: ns1.<domain>,
// root.ns1.<domain>, refresh 60, retry 600, expire 86400, minimum TTL).
func (s *Server) soa(owner string, serial uint32) *mdns.SOA {
	return &mdns.SOA{
		Hdr:     mdns.RR_Header{Name: owner, Rrtype: mdns.TypeSOA, Class: mdns.ClassINET, Ttl: s.cfg.TTL},
		Ns:      "ns1." + s.domain,
		Mbox:    "root.ns1." + s.domain,
		Serial:  serial,
		Refresh: 60,
		Retry:   600,
		Expire:  86400,
		Minttl:  s.cfg.TTL,
	}
}

// reply sizes m for the transport (512 bytes over UDP, or the client's
// EDNS0 buffer; 64 KiB over TCP), setting TC when records had to go.
func (s *Server) reply(w mdns.ResponseWriter, r, m *mdns.Msg) {
	size := mdns.MaxMsgSize
	if udp(w) {
		size = mdns.MinMsgSize
	}
	if opt := r.IsEdns0(); opt != nil && m.IsEdns0() == nil {
		if udp(w) {
			size = max(int(opt.UDPSize()), mdns.MinMsgSize)
		}
		m.SetEdns0(mdns.DefaultMsgSize, false)
	}
	m.Truncate(size)
	if err := w.WriteMsg(m); err != nil {
		s.log.Debug("dns: writing reply failed", "err", err)
	}
}

// udp reports whether the query came over UDP.
func udp(w mdns.ResponseWriter) bool {
	_, ok := w.RemoteAddr().(*net.UDPAddr)
	return ok
}

// forward relays a query for a name outside the domain to the upstream
// resolvers in turn, over the client's transport, each within the
// timeout; none configured refuses it, none answering is SERVFAIL.
func (s *Server) forward(w mdns.ResponseWriter, r *mdns.Msg) {
	if len(s.resolvers) == 0 {
		s.metrics.queries.WithLabelValues("forward", "REFUSED").Inc()
		m := new(mdns.Msg)
		m.SetRcode(r, mdns.RcodeRefused)
		s.reply(w, r, m)
		return
	}
	network := "udp"
	if !udp(w) {
		network = "tcp"
	}
	c := &mdns.Client{Net: network, Timeout: s.cfg.Timeout}
	if opt := r.IsEdns0(); opt != nil {
		c.UDPSize = opt.UDPSize()
	}
	for _, addr := range s.resolvers {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
		resp, _, err := c.ExchangeContext(ctx, r, addr)
		cancel()
		if err != nil || resp == nil {
			s.log.Debug("dns: upstream failed", "resolver", addr, "name", r.Question[0].Name, "err", err)
			continue
		}
		resp.Id = r.Id
		s.metrics.queries.WithLabelValues("forward", mdns.RcodeToString[resp.Rcode]).Inc()
		s.reply(w, r, resp)
		return
	}
	s.metrics.queries.WithLabelValues("forward", "SERVFAIL").Inc()
	m := new(mdns.Msg)
	m.SetRcode(r, mdns.RcodeServerFailure)
	s.reply(w, r, m)
}
