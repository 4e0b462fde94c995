package templates

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

//go:embed default
var defaultFS embed.FS

// Set is a complete template set: one text per marathon-lb template name,
// parsed and checked. A Set is immutable after creation and safe for
// concurrent use.
type Set struct {
	texts    map[string]string
	compiled map[string]*compiled // formatted templates only
}

// Default returns the embedded default templates (templates/default/NAME).
func Default() *Set {
	s, err := fromFS(nil)
	if err != nil {
		// The embedded defaults are constant and covered by tests.
		panic(fmt.Sprintf("templates: embedded defaults are broken: %v", err))
	}
	return s
}

// Load returns the defaults overridden by the files of dir whose names are
// template names (HAPROXY_*). Other files are ignored. A missing or
// unreadable dir, or an override with malformed braces or a placeholder the
// template does not offer, is an error naming the file.
func Load(dir string) (*Set, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read templates dir: %w", err)
	}
	overrides := make(map[string]string)
	for _, e := range entries {
		if _, ok := lookup(e.Name()); !ok {
			continue
		}
		p := filepath.Join(dir, e.Name())
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", p, err)
		}
		if !st.Mode().IsRegular() {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", p, err)
		}
		overrides[e.Name()] = string(b)
	}
	s, err := fromFS(overrides)
	if err != nil {
		return nil, fmt.Errorf("templates dir %s: %w", dir, err)
	}
	return s, nil
}

// fromFS builds a Set from the embedded defaults plus overrides.
func fromFS(overrides map[string]string) (*Set, error) {
	s := &Set{texts: make(map[string]string, len(catalog)), compiled: make(map[string]*compiled, len(catalog))}
	var errs []error
	for _, e := range catalog {
		text, ok := overrides[e.name]
		if ok {
			var err error
			if text, err = normalize(e, text); err != nil {
				errs = append(errs, fmt.Errorf("template %s: %w", e.name, err))
				continue
			}
		} else {
			b, err := fs.ReadFile(defaultFS, "default/"+e.name)
			if err != nil {
				errs = append(errs, fmt.Errorf("default %s: %w", e.name, err))
				continue
			}
			text = string(b)
		}
		s.texts[e.name] = text
		if e.kind == formatted {
			c, err := compile(text, e.placeholders)
			if err != nil {
				errs = append(errs, fmt.Errorf("template %s: %w", e.name, err))
				continue
			}
			s.compiled[e.name] = c
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// normalize prepares an override of template e for use.
//
// The two inline fragments (server health-check options, placed inside the
// server line) are handled as marathon-lb does: surrounding white space is
// stripped and a non-empty result gets one leading space, so a file that
// ends in a newline does not push the rest of the server line (" disabled",
// " maxconn 100") onto a line of its own. A line break left inside the
// fragment could only split the server line, so it is an error.
//
// A non-empty override of any other template gets a final newline when it
// lacks one. Without it, an override such as a server line written without
// its "\n" (a common mistake when labels are edited in a UI, marathon-lb
// issue #482) would glue the next line onto it and break the whole config.
func normalize(e info, text string) (string, error) {
	if contains(inlineTemplates, e.name) {
		text = strings.TrimSpace(text)
		if strings.ContainsAny(text, "\r\n") {
			return "", fmt.Errorf("must fit on the server line: it has a line break")
		}
		if text != "" {
			text = " " + text
		}
		return text, nil
	}
	if text == "" || strings.HasSuffix(text, "\n") {
		return text, nil
	}
	return text + "\n", nil
}

// Get returns the text of template name, or "" for an unknown name.
func (s *Set) Get(name string) string { return s.texts[name] }

// head returns HAPROXY_HEAD with {statsPort} filled in.
func (s *Set) head(statsPort string) string {
	return strings.ReplaceAll(s.texts["HAPROXY_HEAD"], "{statsPort}", statsPort)
}
