package haproxy

import (
	"regexp"
	"strconv"
	"strings"
)

// locationRE matches the "parsing [<file>:<line>] :" part of HAProxy's
// messages about a configuration line.
var locationRE = regexp.MustCompile(`parsing \[[^\]]*:(\d+)\]\s*:?\s*`)

// levelRE matches the "[ALERT] config : " prefix left by cleanLine.
var levelRE = regexp.MustCompile(`^\[(?:ALERT|WARNING|NOTICE)\]\s*(?:config\s*:\s*)?`)

// Alert is one of HAProxy's messages about a configuration it rejected,
// with the line of the configuration it is about.
type Alert struct {
	// Line is the 1-based line of the checked configuration the message
	// is about, or 0 when it names none (errors found after parsing, the
	// closing "Fatal errors found" summary, ...).
	Line int
	// Text is the message without its "[ALERT] config : parsing
	// [file:line] :" prefix, e.g. "unknown keyword 'foo' in 'backend'
	// section". The temporary file name is dropped: it means nothing to
	// an operator.
	Text string
}

// Alerts returns e's messages with the configuration lines they are about,
// in HAProxy's order. Callers use the line numbers to find the section
// (and so the app) that a message blames.
func (e *CheckError) Alerts() []Alert {
	out := make([]Alert, 0, len(e.Lines))
	for _, l := range e.Lines {
		out = append(out, parseAlert(l))
	}
	return out
}

func parseAlert(l string) Alert {
	a := Alert{}
	if m := locationRE.FindStringSubmatchIndex(l); m != nil {
		if n, err := strconv.Atoi(l[m[2]:m[3]]); err == nil {
			a.Line = n
		}
		a.Text = strings.TrimSpace(l[m[1]:])
		return a
	}
	a.Text = strings.TrimSpace(levelRE.ReplaceAllString(l, ""))
	return a
}
