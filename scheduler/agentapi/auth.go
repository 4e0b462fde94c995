package agentapi

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
)

// HeaderAgentToken carries an agent's own token (given at registration)
// on the assignments and status requests. The cluster secret travels as
// "Authorization: Bearer <secret>" on every request.
const HeaderAgentToken = "X-Switchyard-Agent-Token"

// ErrForbidden is returned by a Scheduler when an agent presents a
// credential that does not match the agent id it claims, or reports a
// task another agent runs; the handlers answer 403.
var ErrForbidden = errors.New("agentapi: forbidden")

// HandlerConfig configures who may use the agent API.
//
// With Secrets set, every request must carry one of them as a bearer
// token (401 otherwise). Without Secrets, requests from loopback peers
// are accepted (an all-in-one or single-host setup), and requests from
// other peers are refused with 403 unless AllowAnonymous is set.
//
// Independently of the cluster secret, the scheduler binds each agent id
// to a per-agent token it issues at the first registration: registering
// as, polling for or reporting for an agent requires that agent's token.
type HandlerConfig struct {
	// Secrets are the accepted cluster secrets (several while one is
	// rotated out). Empty strings are ignored.
	Secrets []string
	// AllowAnonymous accepts agents from any address when Secrets is
	// empty (the scheduler's --insecure-no-auth).
	AllowAnonymous bool
	// ClientCAs, when set, requires mutual TLS: every request must come
	// over TLS with a client certificate that chains to one of these CAs
	// and allows client authentication. A request without one (plain
	// HTTP, or no certificate) gets 401, one with another certificate
	// 403, before the cluster secret and agent token are checked. The
	// listener's tls.Config should request client certificates
	// (tls.RequestClientCert) without verifying them, so the check and
	// its log line happen here and clients of other paths are unaffected.
	ClientCAs *x509.CertPool
	// ClientCertHostname, with ClientCAs, also requires the hostname an
	// agent registers with to be one of its certificate's DNS (or IP)
	// subject alternative names; a registration under another hostname
	// gets 403. The per-agent token then ties the id to that hostname.
	ClientCertHostname bool
	// Logger receives refused requests; nil means slog.Default().
	Logger *slog.Logger
}

// ReadSecretFile reads cluster secrets from a file: one per line, blank
// lines and lines starting with '#' ignored. It fails when the file holds
// no secret. A file readable by group or others is accepted, but warn is
// called so the operator can tighten it.
func ReadSecretFile(path string, warn func(msg string)) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("secret file: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().Perm()&0o077 != 0 && warn != nil {
		warn(fmt.Sprintf("secret file %s is readable by group or others (mode %s); chmod 600 it", path, fi.Mode().Perm()))
	}
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("secret file %s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("secret file %s: %w: no secret in it", path, fs.ErrInvalid)
	}
	return out, nil
}

// NewAgentToken returns a fresh random per-agent token.
func NewAgentToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// HashAgentToken is what a scheduler stores instead of an agent token.
func HashAgentToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// AgentTokenMatches reports, in constant time, whether token hashes to
// hash. An empty token or hash never matches.
func AgentTokenMatches(hash, token string) bool {
	if hash == "" || token == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(hash), []byte(HashAgentToken(token))) == 1
}

// admit applies the cluster secret rule to a request; on refusal it has
// answered and logged.
func (h *handler) admit(w http.ResponseWriter, r *http.Request) bool {
	if !h.admitCert(w, r) {
		return false
	}
	secrets := h.secrets
	if len(secrets) > 0 {
		got, ok := bearer(r)
		if ok {
			gs := sha256.Sum256([]byte(got))
			match := 0
			for _, s := range secrets {
				match |= subtle.ConstantTimeCompare(gs[:], s[:])
			}
			if match == 1 {
				return true
			}
		}
		h.log.Warn("agent API request refused: missing or wrong cluster secret",
			"path", r.URL.Path, "remote", r.RemoteAddr, "presented", ok)
		w.Header().Set("WWW-Authenticate", `Bearer realm="switchyard-agents"`)
		writeError(w, http.StatusUnauthorized, errors.New("agent authentication required: missing or wrong cluster secret"))
		return false
	}
	if h.cfg.AllowAnonymous || loopbackPeer(r.RemoteAddr) {
		return true
	}
	h.log.Warn("agent API request refused: no agent secret is configured, so only agents on the scheduler's host may connect (set --agent-secret-file, or --insecure-no-auth to accept any)",
		"path", r.URL.Path, "remote", r.RemoteAddr)
	writeError(w, http.StatusForbidden, errors.New("agent API: no agent secret configured on the scheduler; only local agents are accepted"))
	return false
}

// admitCert applies the client certificate rule (HandlerConfig.ClientCAs);
// on refusal it has answered and logged.
func (h *handler) admitCert(w http.ResponseWriter, r *http.Request) bool {
	if h.cfg.ClientCAs == nil {
		return true
	}
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		h.log.Warn("agent API request refused: no client certificate (the scheduler requires agents to present one over HTTPS: --agent-client-ca)",
			"path", r.URL.Path, "remote", r.RemoteAddr, "tls", r.TLS != nil)
		writeError(w, http.StatusUnauthorized, errors.New("agent authentication required: connect over HTTPS with a client certificate"))
		return false
	}
	leaf := r.TLS.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range r.TLS.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots: h.cfg.ClientCAs, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		h.log.Warn("agent API request refused: client certificate not accepted",
			"path", r.URL.Path, "remote", r.RemoteAddr, "subject", leaf.Subject.String(), "err", err)
		writeError(w, http.StatusForbidden, errors.New("agent client certificate not accepted"))
		return false
	}
	return true
}

// certNamesHost applies HandlerConfig.ClientCertHostname to a
// registration's hostname; on refusal it has answered and logged.
func (h *handler) certNamesHost(w http.ResponseWriter, r *http.Request, hostname string) bool {
	if h.cfg.ClientCAs == nil || !h.cfg.ClientCertHostname || r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return true // admitCert refused requests without a certificate
	}
	leaf := r.TLS.PeerCertificates[0]
	if err := leaf.VerifyHostname(hostname); err != nil {
		h.log.Warn("agent registration refused: the hostname is not a name of its client certificate",
			"hostname", hostname, "remote", r.RemoteAddr, "subject", leaf.Subject.String(), "cert_names", leaf.DNSNames)
		writeError(w, http.StatusForbidden, fmt.Errorf("hostname %q is not a name of the agent's client certificate", hostname))
		return false
	}
	return true
}

// bearer returns the token of an "Authorization: Bearer" header.
func bearer(r *http.Request) (string, bool) {
	v := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// loopbackPeer reports whether a request's remote address is a loopback
// address.
func loopbackPeer(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
