package playbook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/conductor-sandbox/conductor/internal/textdir"
	"github.com/conductor-sandbox/conductor/program"
)

// Dir is the directory of playbooks (MCP_CONDUCTOR_PLAYBOOKS). It is safe for concurrent use.
type Dir struct {
	dir      string
	writable bool
	log      *slog.Logger

	mu       sync.Mutex
	stamp    string
	list     map[string]*Playbook
	problems []string
}

// Open returns the playbooks of dir, failing closed: dir must be a directory this process can
// read and, with writable (MCP_CONDUCTOR_PLAYBOOKS_WRITABLE), write.
func Open(dir string, writable bool, log *slog.Logger) (*Dir, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := Check(dir, writable); err != nil {
		return nil, err
	}
	d := &Dir{dir: dir, writable: writable, log: log}
	d.List()
	return d, nil
}

// Check says why dir cannot serve as the playbook directory (nil when it can).
func Check(dir string, writable bool) error {
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("playbook directory %s: %w", dir, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("playbook directory %s: not a directory", dir)
	}
	if _, err := os.ReadDir(dir); err != nil {
		return fmt.Errorf("playbook directory %s: cannot be read: %w", dir, err)
	}
	if writable {
		f, err := os.CreateTemp(dir, ".check-*")
		if err != nil {
			return fmt.Errorf("playbook directory %s: saving is enabled but the directory cannot be written: %w", dir, err)
		}
		name := f.Name()
		f.Close()
		if err := os.Remove(name); err != nil {
			return fmt.Errorf("playbook directory %s: removing a test file: %w", dir, err)
		}
	}
	return nil
}

// Path is the directory.
func (d *Dir) Path() string { return d.dir }

// Writable says whether Save may write.
func (d *Dir) Writable() bool { return d.writable }

// List returns every good playbook, sorted by name, re-reading the directory when it changed.
func (d *Dir) List() []*Playbook {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.refreshLocked()
	out := make([]*Playbook, 0, len(d.list))
	for _, p := range d.list {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Problems lists the files skipped at the last read, each with its reason.
func (d *Dir) Problems() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.refreshLocked()
	return append([]string(nil), d.problems...)
}

// Get returns the playbook named name.
func (d *Dir) Get(name string) (*Playbook, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.refreshLocked()
	if p, ok := d.list[name]; ok {
		return p, nil
	}
	names := make([]string, 0, len(d.list))
	for n := range d.list {
		names = append(names, n)
	}
	sort.Strings(names)
	have := "none"
	if len(names) > 0 {
		have = strings.Join(names, ", ")
	}
	return nil, fmt.Errorf("%w: %q; the server's playbooks: %s", ErrNotFound, name, have)
}

func (d *Dir) refreshLocked() {
	stamp := textdir.Stamp(d.dir)
	if d.list != nil && stamp == d.stamp {
		return
	}
	d.stamp = stamp
	d.list, d.problems = map[string]*Playbook{}, nil
	ents, err := os.ReadDir(d.dir)
	if err != nil {
		d.problems = append(d.problems, fmt.Sprintf("%s: cannot be read: %v", d.dir, err))
		d.log.Warn("the playbook directory cannot be read; no playbooks", "dir", d.dir, "err", err)
		return
	}
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue // hidden, and save's temporary files
		}
		skip := func(why string) {
			d.problems = append(d.problems, fmt.Sprintf("%s: %s", name, why))
			d.log.Warn("playbook file skipped", "file", filepath.Join(d.dir, name), "reason", why)
		}
		if !e.Type().IsRegular() {
			skip("not a regular file (links and directories are not playbooks)")
			continue
		}
		if filepath.Ext(name) != Ext {
			skip("not a " + Ext + " file")
			continue
		}
		if err := CheckName(strings.TrimSuffix(name, Ext)); err != nil {
			skip(fmt.Sprintf("the name before %s is not a playbook name (allowed: %s)", Ext, NameRule))
			continue
		}
		text, err := textdir.ReadFile(filepath.Join(d.dir, name), MaxBytes)
		if err != nil {
			skip(err.Error())
			continue
		}
		p, err := Parse(name, text)
		if err != nil {
			skip(strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": "+name+": "))
			continue
		}
		d.list[p.Name] = p
	}
}

// Save writes a playbook: its front-matter must be valid and its code must parse as TypeScript
// (package program). Without overwrite an existing name is refused (ErrExists). The write is
// atomic: a temporary file in the directory, then a link (no overwrite) or a rename over it.
func (d *Dir) Save(ctx context.Context, m Meta, code string, overwrite bool) (*Playbook, error) {
	if !d.writable {
		return nil, ErrReadOnly
	}
	if err := CheckName(m.Name); err != nil {
		return nil, err
	}
	file := m.Name + Ext
	text, err := Format(m, code)
	if err != nil {
		return nil, err
	}
	p, err := Parse(file, text)
	if err != nil {
		return nil, err
	}
	prog, err := program.PrepareContext(ctx, p.Source)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: the code cannot be run: %w", ErrInvalid, file, err)
	}
	if prog.ParseFailed {
		return nil, fmt.Errorf("%w: %s: the code does not parse as TypeScript; run it with run_deno_code to see the syntax error and its position", ErrInvalid, file)
	}
	if err := d.write(file, text, overwrite); err != nil {
		return nil, err
	}
	d.log.Info("playbook saved", "name", m.Name, "bytes", len(text), "overwrite", overwrite)
	return p, nil
}

func (d *Dir) write(file, text string, overwrite bool) error {
	f, err := os.CreateTemp(d.dir, ".save-*")
	if err != nil {
		return fmt.Errorf("saving playbook %s: %w", file, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a rename or a link it is gone or an extra name
	_, err = f.WriteString(text)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err != nil {
		return fmt.Errorf("saving playbook %s: %w", file, err)
	}
	final := filepath.Join(d.dir, file)
	if overwrite {
		err = os.Rename(tmp, final)
	} else if err = os.Link(tmp, final); errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%w: %q already exists; save with overwrite: true to replace it", ErrExists, strings.TrimSuffix(file, Ext))
	}
	if err != nil {
		return fmt.Errorf("saving playbook %s: %w", file, err)
	}
	return nil
}
