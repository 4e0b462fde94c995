package templates

import (
	"fmt"
	"strings"
)

// segment is a piece of a compiled template: literal text, or a placeholder
// when key is not empty.
type segment struct {
	lit string
	key string
}

// compiled is a template parsed once, ready to be filled in many times.
type compiled struct {
	segs []segment
}

// compile parses Python str.format-style text: {name} is a placeholder,
// {{ and }} are literal braces. Placeholder names are identifiers; format
// specs ({x:>5}), conversions ({x!r}), indexes ({x[0]}), attributes ({x.y})
// and positional fields ({0}, {}) are rejected. When allowed is not nil,
// any placeholder outside it is an error.
func compile(text string, allowed []string) (*compiled, error) {
	c := &compiled{}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			c.segs = append(c.segs, segment{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(text); i++ {
		ch := text[i]
		switch ch {
		case '{':
			if i+1 < len(text) && text[i+1] == '{' {
				lit.WriteByte('{')
				i++
				continue
			}
			end := strings.IndexByte(text[i+1:], '}')
			if end < 0 {
				return nil, fmt.Errorf("unclosed '{' at offset %d", i)
			}
			name := text[i+1 : i+1+end]
			if !isIdent(name) {
				return nil, fmt.Errorf("bad placeholder {%s} at offset %d: want {name} with letters, digits and '_'", name, i)
			}
			if allowed != nil && !contains(allowed, name) {
				return nil, fmt.Errorf("unknown placeholder {%s} (known: %s)", name, strings.Join(allowed, ", "))
			}
			flush()
			c.segs = append(c.segs, segment{key: name})
			i += end + 1
		case '}':
			if i+1 < len(text) && text[i+1] == '}' {
				lit.WriteByte('}')
				i++
				continue
			}
			return nil, fmt.Errorf("single '}' at offset %d (write '}}' for a literal brace)", i)
		default:
			lit.WriteByte(ch)
		}
	}
	flush()
	return c, nil
}

// isIdent reports whether s is a placeholder name: a letter or '_' followed
// by letters, digits or '_'.
func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// params are placeholder values as key, value pairs (few per template, so a
// linear scan beats a map).
type params []string

func (p params) get(key string) (string, bool) {
	for i := 0; i+1 < len(p); i += 2 {
		if p[i] == key {
			return p[i+1], true
		}
	}
	return "", false
}

// execute appends the filled-in template to sb. A placeholder with no value
// in p is an error.
func (c *compiled) execute(sb *strings.Builder, p params) error {
	for _, s := range c.segs {
		if s.key == "" {
			sb.WriteString(s.lit)
			continue
		}
		v, ok := p.get(s.key)
		if !ok {
			return fmt.Errorf("no value for placeholder {%s}", s.key)
		}
		sb.WriteString(v)
	}
	return nil
}

// Format fills in a Python str.format-style template: each {name} is
// replaced by values[name], "{{" and "}}" become "{" and "}". An unknown
// placeholder or malformed braces is an error; Format never panics.
func Format(text string, values map[string]string) (string, error) {
	c, err := compile(text, nil)
	if err != nil {
		return "", err
	}
	var sb strings.Builder
	for _, s := range c.segs {
		if s.key == "" {
			sb.WriteString(s.lit)
			continue
		}
		v, ok := values[s.key]
		if !ok {
			return "", fmt.Errorf("unknown placeholder {%s}", s.key)
		}
		sb.WriteString(v)
	}
	return sb.String(), nil
}
