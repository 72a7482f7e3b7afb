package configs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"iter"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// Parse decodes a configuration from data, which came from the file called
// name (for error messages). Unknown keys, values of the wrong type and
// values out of range are errors of the form "FILE:LINE: KEY: what is
// wrong".
func Parse(data []byte, name string) (*Config, error) {
	// Keys whose empty value means something (off) have their defaults
	// set before decoding; the rest are filled in after.
	c := Config{Supervisor: Supervisor{Metrics: DefaultMetrics}}
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, decodeError(data, name, err)
	}
	c.fillDefaults()
	if err := c.check(); err != nil {
		var fe *fieldError
		if errors.As(err, &fe) {
			if line := findKey(data, fe.key, fe.nth); line > 0 {
				return nil, fmt.Errorf("%s:%d: %s", name, line, fe)
			}
			return nil, fmt.Errorf("%s: %s (the default value)", name, fe)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &c, nil
}

func decodeError(data []byte, name string, err error) error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		var msgs []string
		for _, e := range strict.Errors {
			row, _ := e.Position()
			msgs = append(msgs, fmt.Sprintf("%s:%d: %s: unknown key", name, row, strings.Join(e.Key(), ".")))
		}
		return errors.New(strings.Join(msgs, "\n"))
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, _ := de.Position()
		key := strings.Join(de.Key(), ".")
		if key == "" {
			key = keyOnLine(data, row)
		}
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		if key != "" {
			return fmt.Errorf("%s:%d: %s: %s", name, row, key, msg)
		}
		return fmt.Errorf("%s:%d: %s", name, row, msg)
	}
	return fmt.Errorf("%s: %w", name, err)
}

// keyOnLine returns the key assigned on line row (1-based), qualified by
// the table it sits in, or "".
func keyOnLine(data []byte, row int) string {
	for l := range tomlLines(data) {
		if l.n != row {
			continue
		}
		k, ok := assignedKey(l.text)
		if !ok {
			return l.table
		}
		if l.table == "" {
			return k
		}
		return l.table + "." + k
	}
	return ""
}

// findKey returns the line (1-based) that sets the dotted key ("app.name"),
// in the nth table of that name when it is an array of tables, or 0 when
// the key is not written in data.
func findKey(data []byte, key string, nth int) int {
	table, field := "", key
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		table, field = key[:i], key[i+1:]
	}
	seen := -1
	for l := range tomlLines(data) {
		if l.header {
			if l.table == table {
				seen++
			}
			continue
		}
		if l.table != table || (nth >= 0 && seen != nth) {
			continue
		}
		if k, ok := assignedKey(l.text); ok && k == field {
			return l.n
		}
	}
	return 0
}

// tomlLine is one line of a TOML file as keyOnLine and findKey read it:
// its number (1-based), its text without the white space around it, the
// table it sits in, and whether it is that table's header.
type tomlLine struct {
	n      int
	text   string
	table  string
	header bool
}

// tomlLines yields the lines of data in order, each with the table it sits
// in ("" before the first header).
func tomlLines(data []byte) iter.Seq[tomlLine] {
	return func(yield func(tomlLine) bool) {
		table := ""
		sc := bufio.NewScanner(bytes.NewReader(data))
		for n := 1; sc.Scan(); n++ {
			line := strings.TrimSpace(sc.Text())
			t, header := tableHeader(line)
			if header {
				table = t
			}
			if !yield(tomlLine{n: n, text: line, table: table, header: header}) {
				return
			}
		}
	}
}

// assignedKey returns the key that line assigns to, unquoted, if it is an
// assignment.
func assignedKey(line string) (string, bool) {
	k, _, ok := strings.Cut(line, "=")
	return strings.Trim(strings.TrimSpace(k), `"'`), ok
}

func tableHeader(line string) (string, bool) {
	if strings.HasPrefix(line, "[[") {
		if end := strings.Index(line, "]]"); end > 0 {
			return strings.TrimSpace(line[2:end]), true
		}
	}
	if strings.HasPrefix(line, "[") {
		if end := strings.Index(line, "]"); end > 0 {
			return strings.TrimSpace(line[1:end]), true
		}
	}
	return "", false
}

// Print renders c as TOML: the effective configuration, defaults included.
func Print(c *Config) ([]byte, error) {
	return toml.Marshal(c)
}
