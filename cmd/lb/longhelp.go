package main

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/switchyard/switchyard/lb"
	"github.com/switchyard/switchyard/templates"
)

// longhelp prints every template (name and documentation) and every label,
// as marathon-lb's --longhelp does.
func longhelp(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "# lb: templates and labels")
	fmt.Fprintln(bw)
	fmt.Fprintln(bw, "## Templates")
	fmt.Fprintln(bw)
	fmt.Fprintln(bw, "A file of a template's name in --templates-dir replaces its default; most")
	fmt.Fprintln(bw, "templates can also be overridden per app port with the label HAPROXY_{n}_<NAME>.")
	for _, name := range templates.Names() {
		fmt.Fprintf(bw, "\n### %s\n\n%s\n", name, strings.TrimSpace(templates.Doc(name)))
	}
	fmt.Fprintln(bw)
	fmt.Fprintln(bw, "## Labels")
	fmt.Fprintln(bw)
	for _, l := range lb.Labels() {
		fmt.Fprintf(bw, "- %s: %s\n", l.Name, l.Description)
	}
	return bw.Flush()
}
