package dns

import (
	"crypto/sha1" //nolint:gosec // a name hash, as Mesos-DNS uses, not a security measure
	"strings"
)

// maxLabel is the longest DNS label RFC 1123 allows.
const maxLabel = 63

// label turns s into one DNS label the way Mesos-DNS does with its default
// (RFC 1123) rules: letters are lowered; '.', '_' and '-' become '-';
// every other character is dropped; leading hyphens go; the result is cut
// to 63 characters without ending in a hyphen (hyphens at the cut are
// replaced by the characters that follow them, up to the limit).
func label(s string) string {
	b := make([]byte, 0, len(s))
	for i := range len(s) {
		switch c := s[i]; {
		case c >= 'A' && c <= 'Z':
			b = append(b, c+('a'-'A'))
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			b = append(b, c)
		case c == '-' || c == '.' || c == '_':
			b = append(b, '-')
		}
	}
	b = []byte(strings.TrimLeft(string(b), "-"))
	n := min(len(b), maxLabel)
	head := strings.TrimRight(string(b[:n]), "-")
	if len(head) == n {
		return head
	}
	// The cut (or the end) left trailing hyphens: refill from what
	// follows the cut, skipping its hyphens, up to n characters.
	rest := strings.TrimLeft(string(b[n:]), "-")
	return head + rest[:min(len(rest), n-len(head))]
}

// domainFrag turns a dotted name (a hostname, a framework name) into
// dotted labels, dropping labels that come out empty.
func domainFrag(name string) string {
	var out []string
	for part := range strings.SplitSeq(name, ".") {
		if l := label(part); l != "" {
			out = append(out, l)
		}
	}
	return strings.Join(out, ".")
}

// taskName is the DNS name of a Marathon app: Marathon names an app's
// Mesos tasks (and their discovery info) by the app id's path reversed
// and joined by dots ("/prod/web/api" -> "api.web.prod"), and Mesos-DNS
// makes that one label ("api-web-prod").
func taskName(appID string) string {
	parts := strings.FieldsFunc(appID, func(r rune) bool { return r == '/' })
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	return label(strings.Join(parts, "."))
}

// zbase32 is the human-oriented base-32 alphabet.
const zbase32 = "ybndrfg8ejkmcpqxot1uwisza345h769"

// taskHash is the five-character tag Mesos-DNS puts in a task's
// canonical name: the first 25 bits of the SHA-1 of the task id, in
// z-base-32.
func taskHash(taskID string) string {
	sum := sha1.Sum([]byte(taskID)) //nolint:gosec // see import
	bits := uint32(sum[0])<<24 | uint32(sum[1])<<16 | uint32(sum[2])<<8 | uint32(sum[3])
	var out [5]byte
	for i := range out {
		out[i] = zbase32[(bits>>(27-5*i))&0x1f]
	}
	return string(out[:])
}

// agentTail is the last '-' separated part of an agent id, lowered
// ("...-S0" -> "s0"), as Mesos-DNS uses it in canonical task names.
func agentTail(agentID string) string {
	if i := strings.LastIndexByte(agentID, '-'); i >= 0 {
		agentID = agentID[i+1:]
	}
	return label(agentID)
}
