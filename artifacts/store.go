package artifacts

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// URI prefixes of the two kinds of output.
const (
	OutputsPrefix   = "conductor://outputs/"
	WorkspacePrefix = "conductor://workspace/"
)

// Errors Read returns; callers branch on them.
var (
	// ErrNotFound: no such output for this identity (another identity's is not found either).
	ErrNotFound = errors.New("no such output")
	// ErrExpired: the output was kept for the retention time and removed.
	ErrExpired = errors.New("expired")
	// ErrEvicted: the output was removed to make room for newer ones within the size cap.
	ErrEvicted = errors.New("removed to make room for newer outputs")
	// ErrTooLarge: one output bigger than the whole store's per-identity cap is not stored.
	ErrTooLarge = errors.New("larger than the store's size per identity")
)

// Options configure a Store.
type Options struct {
	// Dir holds the store: created 0700; each process keeps its outputs in a directory of
	// its own below it.
	Dir string
	// MaxBytes caps the bytes stored per identity; the oldest are removed first to fit.
	MaxBytes int64
	// Retention is how long an output is kept.
	Retention time.Duration
	Logger    *slog.Logger
}

// Item is one output the store knows: kept (a file, or a workspace reference) or gone.
type Item struct {
	URI      string
	Name     string // the output's name (the workspace-relative path of a reference)
	MimeType string
	Bytes    int64
	// Workspace: a reference to the identity's workspace file Name, read when asked.
	Workspace bool

	id       string
	identity string
	expires  time.Time
	gone     error // ErrExpired or ErrEvicted: a tombstone
}

// Store keeps outputs per identity. Its methods are safe for concurrent use.
type Store struct {
	o    Options
	dir  string   // this process's directory
	lock *os.File // the flock that says this process is alive

	mu    sync.Mutex
	items map[string]*Item // kept files and references, by key()
	order []*Item          // the same, oldest first (so also by expiry)
	used  map[string]int64 // stored bytes per identity
	// tombs are removed outputs, by key(), remembered a retention time more (at most
	// maxTombstones, oldest dropped first) so that a read says why it is gone.
	tombs     map[string]*Item
	tombOrder []*Item
	timer     *time.Timer
	closed    bool
}

const (
	instancePrefix = "out-"
	lockName       = ".lock"
	// maxTombstones bounds the removed outputs remembered to say "expired".
	maxTombstones = 10000
)

// Open makes the store's directory and this process's directory in it, removing those of
// processes that are gone (their lock is not held).
func Open(o Options) (*Store, error) {
	if o.Dir == "" || !filepath.IsAbs(o.Dir) {
		return nil, fmt.Errorf("artifacts: directory %q must be an absolute path", o.Dir)
	}
	if o.MaxBytes <= 0 || o.Retention <= 0 {
		return nil, fmt.Errorf("artifacts: size cap and retention must be positive")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("artifacts: %w", err)
	}
	if err := os.Chmod(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("artifacts: %w", err)
	}
	sweep(o.Dir, o.Logger)
	id, err := randomID()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(o.Dir, instancePrefix+id)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, fmt.Errorf("artifacts: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockName), os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err == nil {
		err = unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("artifacts: locking %s: %w", dir, err)
	}
	return &Store{o: o, dir: dir, lock: lock, items: map[string]*Item{}, used: map[string]int64{}, tombs: map[string]*Item{}}, nil
}

// sweep removes the directories of stores whose process is gone.
func sweep(root string, log *slog.Logger) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), instancePrefix) {
			continue
		}
		dir := filepath.Join(root, e.Name())
		f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
		if err == nil {
			err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
			if errors.Is(err, unix.EWOULDBLOCK) {
				f.Close()
				continue // alive
			}
			f.Close()
		}
		if err := os.RemoveAll(dir); err != nil {
			log.Warn("artifacts: removing a dead store", "dir", dir, "err", err)
			continue
		}
		log.Info("artifacts: removed the outputs of a previous process", "dir", dir)
	}
}

// Close removes every output and this process's directory, and the store's directory when it is
// then empty.
func (s *Store) Close() error {
	s.mu.Lock()
	s.closed = true
	if s.timer != nil {
		s.timer.Stop()
	}
	s.items, s.order, s.used, s.tombs, s.tombOrder = map[string]*Item{}, nil, map[string]int64{}, map[string]*Item{}, nil
	s.mu.Unlock()
	err := os.RemoveAll(s.dir)
	s.lock.Close()
	// The store's directory too when no other process keeps outputs there (Remove fails on a
	// directory that is not empty): a stopped server leaves nothing in the state directory.
	_ = os.Remove(s.o.Dir)
	return err
}

// Retention is how long outputs are kept.
func (s *Store) Retention() time.Duration { return s.o.Retention }

// MaxBytes is the size cap per identity.
func (s *Store) MaxBytes() int64 { return s.o.MaxBytes }

func randomID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("artifacts: random id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// escapePath escapes each "/"-separated element of name for a URI path.
func escapePath(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

// OutputURI is the URI of stored output id named name.
func OutputURI(id, name string) string { return OutputsPrefix + id + "/" + escapePath(name) }

// WorkspaceURI is the URI of a reference to the workspace file at path (workspace-relative).
func WorkspaceURI(path string) string { return WorkspacePrefix + escapePath(path) }

// identityRE is what an identity name may be (package identity's names, "http", "stdio").
var identityRE = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)

// Put stores data as identity's output name and returns its URI. Older outputs of the
// identity are removed to fit MaxBytes; data larger than MaxBytes is refused (ErrTooLarge).
func (s *Store) Put(identity, name, mimeType string, data []byte) (string, error) {
	if !identityRE.MatchString(identity) {
		return "", fmt.Errorf("artifacts: identity %q: not a name of a-z 0-9 _ -", identity)
	}
	n := int64(len(data))
	if n > s.o.MaxBytes {
		return "", fmt.Errorf("%w: %d bytes, the cap is %d", ErrTooLarge, n, s.o.MaxBytes)
	}
	id, err := randomID()
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return "", errors.New("artifacts: the store is closed")
	}
	s.evictLocked(identity, n)
	dir := filepath.Join(s.dir, identity)
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("artifacts: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, id), data, 0o600); err != nil {
		os.Remove(filepath.Join(dir, id))
		return "", fmt.Errorf("artifacts: storing %s: %w", name, err)
	}
	it := &Item{URI: OutputURI(id, name), Name: name, MimeType: mimeType, Bytes: n, id: id, identity: identity}
	s.addLocked(it)
	s.used[identity] += n
	return it.URI, nil
}

// Reference remembers that identity's run named its workspace file path (workspace-relative,
// "/"-separated) as an output, for the retention time, and returns its URI. Nothing is copied:
// ReadBeneath reads the file when the client asks.
func (s *Store) Reference(identity, path, mimeType string, size int64) (string, error) {
	if !identityRE.MatchString(identity) {
		return "", fmt.Errorf("artifacts: identity %q: not a name of a-z 0-9 _ -", identity)
	}
	if !ValidPath(path) {
		return "", fmt.Errorf("artifacts: workspace path %q: not a clean relative path", path)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return "", errors.New("artifacts: the store is closed")
	}
	uri := WorkspaceURI(path)
	// The URI is the same for every run naming the file: one reference per identity and path.
	key := identity + "\x00" + uri
	if old, ok := s.items[key]; ok {
		s.removeLocked(old, nil)
	}
	it := &Item{URI: uri, Name: path, MimeType: mimeType, Bytes: size, Workspace: true, identity: identity}
	s.addLocked(it)
	return uri, nil
}

// ValidPath says whether p is a clean, relative, "/"-separated path without . or .. elements.
func ValidPath(p string) bool {
	if p == "" || strings.HasPrefix(p, "/") || strings.ContainsRune(p, 0) {
		return false
	}
	for _, e := range strings.Split(p, "/") {
		if e == "" || e == "." || e == ".." {
			return false
		}
	}
	return true
}

// key is where items holds it: stored outputs by URI (the id is unguessable), references by
// identity and URI (each identity has its own workspace).
func (it *Item) key() string {
	if it.Workspace {
		return it.identity + "\x00" + it.URI
	}
	return it.URI
}

func (s *Store) addLocked(it *Item) {
	it.expires = time.Now().Add(s.o.Retention)
	s.items[it.key()] = it
	s.order = append(s.order, it)
	if s.timer == nil {
		s.timer = time.AfterFunc(s.o.Retention, s.expire)
	}
}

// evictLocked removes identity's oldest stored outputs until n more bytes fit.
func (s *Store) evictLocked(identity string, n int64) {
	for i := 0; i < len(s.order) && s.used[identity]+n > s.o.MaxBytes; {
		it := s.order[i]
		if it.identity != identity || it.Workspace {
			i++
			continue
		}
		s.removeLocked(it, ErrEvicted)
		s.o.Logger.Debug("artifacts: evicted", "identity", identity, "uri", it.URI, "bytes", it.Bytes)
	}
}

// removeLocked deletes it's file and takes it out of the order; with why, the URI is kept as a
// tombstone that Read answers with why.
func (s *Store) removeLocked(it *Item, why error) {
	for i, o := range s.order {
		if o == it {
			s.order = append(s.order[:i], s.order[i+1:]...)
			break
		}
	}
	delete(s.items, it.key())
	if !it.Workspace {
		os.Remove(filepath.Join(s.dir, it.identity, it.id))
		s.used[it.identity] -= it.Bytes
		if s.used[it.identity] <= 0 {
			delete(s.used, it.identity)
		}
	}
	if why == nil {
		return
	}
	tomb := *it
	tomb.gone = why
	tomb.expires = time.Now().Add(s.o.Retention)
	k := tomb.key()
	if old, ok := s.tombs[k]; ok {
		old.gone = nil // superseded: dropTombLocked skips it
	}
	s.tombs[k] = &tomb
	s.tombOrder = append(s.tombOrder, &tomb)
	for len(s.tombOrder) > maxTombstones {
		s.dropTombLocked()
	}
}

// dropTombLocked forgets the oldest tombstone.
func (s *Store) dropTombLocked() {
	t := s.tombOrder[0]
	s.tombOrder = s.tombOrder[1:]
	if t.gone != nil && s.tombs[t.key()] == t {
		delete(s.tombs, t.key())
	}
}

// expire removes what is past its time, and sets the timer for the next.
func (s *Store) expire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	now := time.Now()
	for len(s.order) > 0 && !s.order[0].expires.After(now) {
		it := s.order[0]
		s.removeLocked(it, ErrExpired)
		s.o.Logger.Debug("artifacts: expired", "identity", it.identity, "uri", it.URI)
	}
	for len(s.tombOrder) > 0 && !s.tombOrder[0].expires.After(now) {
		s.dropTombLocked()
	}
	var next time.Time
	switch {
	case len(s.order) > 0:
		next = s.order[0].expires // before every tombstone's: they expire a retention after removal
	case len(s.tombOrder) > 0:
		next = s.tombOrder[0].expires
	default:
		s.timer = nil
		return
	}
	s.timer = time.AfterFunc(next.Sub(now), s.expire)
}

// Lookup is the item identity may read at uri: ErrNotFound when there is none or it is another
// identity's, ErrExpired or ErrEvicted when it is gone. The URI's name must be the output's.
func (s *Store) Lookup(identity, uri string) (Item, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	find := func(m map[string]*Item) (*Item, bool) {
		if it, ok := m[uri]; ok {
			return it, true
		}
		it, ok := m[identity+"\x00"+uri]
		return it, ok
	}
	it, ok := find(s.items)
	if !ok {
		if t, dead := find(s.tombs); dead && t.identity == identity {
			return Item{}, t.gone
		}
		return Item{}, ErrNotFound
	}
	if it.identity != identity {
		return Item{}, ErrNotFound
	}
	if !it.expires.After(time.Now()) {
		return Item{}, ErrExpired
	}
	return *it, nil
}

// Read returns the bytes of identity's stored output at uri (Lookup's errors), or for a
// workspace reference the Item alone (read it with ReadBeneath).
func (s *Store) Read(identity, uri string) (Item, []byte, error) {
	it, err := s.Lookup(identity, uri)
	if err != nil || it.Workspace {
		return it, nil, err
	}
	data, err := os.ReadFile(filepath.Join(s.dir, identity, it.id))
	if errors.Is(err, os.ErrNotExist) {
		return Item{}, nil, ErrExpired // removed between the lookup and the read
	}
	if err != nil {
		return Item{}, nil, fmt.Errorf("artifacts: reading %s: %w", uri, err)
	}
	return it, data, nil
}
