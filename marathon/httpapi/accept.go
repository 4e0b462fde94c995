package httpapi

import (
	"mime"
	"strconv"
	"strings"
)

// mediaRange is one element of an Accept header.
type mediaRange struct {
	typ, sub string // lower case; "*" is a wildcard
	q        float64
}

// parseAccept parses the Accept header values. Malformed elements are
// skipped; an empty result means the client expressed no preference.
func parseAccept(values []string) []mediaRange {
	var out []mediaRange
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			typ, sub, ok := strings.Cut(mt, "/")
			if !ok || typ == "" || sub == "" || typ == "*" && sub != "*" {
				continue
			}
			q := 1.0
			if qs, ok := params["q"]; ok {
				f, err := strconv.ParseFloat(qs, 64)
				if err != nil || f < 0 || f > 1 {
					continue
				}
				q = f
			}
			out = append(out, mediaRange{typ: typ, sub: sub, q: q})
		}
	}
	return out
}

// Specificity of the range that matched a media type.
const (
	matchNone = iota
	matchAny  // */*
	matchType // type/*
	matchFull // type/subtype
)

// quality returns the q value the ranges give mediaType (type/subtype,
// lower case) and how specific the deciding range is: the most specific
// matching range decides (RFC 9110 §12.5.1), the highest q among equally
// specific ones.
func quality(ranges []mediaRange, mediaType string) (q float64, match int) {
	typ, sub, _ := strings.Cut(mediaType, "/")
	for _, r := range ranges {
		m := matchNone
		switch {
		case r.typ == typ && r.sub == sub:
			m = matchFull
		case r.typ == typ && r.sub == "*":
			m = matchType
		case r.typ == "*":
			m = matchAny
		}
		if m == matchNone || m < match {
			continue
		}
		if m > match {
			q, match = r.q, m
			continue
		}
		q = max(q, r.q)
	}
	return q, match
}
