package metalog

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/ringmq/ringmq/storage/vfs"
	"golang.org/x/sys/unix"
)

// File names inside the store's directory.
const (
	logName         = "meta.log"
	snapshotName    = "meta.snapshot"
	snapshotTmpName = "meta.snapshot.tmp"
)

// DefaultCompactBytes is the log size above which a write triggers
// compaction (when the log is also more than twice the live data).
const DefaultCompactBytes = 4 << 20

// maxScratch bounds the encode buffer a Store keeps between writes.
const maxScratch = 64 << 10

// Options configure a Store. The zero value is valid: caller-driven sync and
// automatic compaction at DefaultCompactBytes.
type Options struct {
	// SyncEveryWrite makes every write fdatasync the log before it returns.
	// When false, changes reach the page cache at once (they survive a
	// process crash) and the disk at the next Sync, Compact or Close.
	SyncEveryWrite bool
	// CompactBytes is the log size that makes a write compact the store,
	// provided the log has also grown past twice the live size. Zero means
	// DefaultCompactBytes; a negative value disables automatic compaction.
	CompactBytes int64
	// FS is the file system the store works on; nil means vfs.OS.
	FS vfs.FS
	// Logger receives recovery notices (torn tail cut, leftover tmp file
	// removed) and automatic compaction failures. Nil means slog.Default().
	Logger *slog.Logger
}

// Stats describes a store's size.
type Stats struct {
	Keys      int   // live keys
	LogBytes  int64 // size of meta.log
	LiveBytes int64 // size of the live keys' records: a snapshot less header and end record
}

// Store is the metadata key → value store. See the package doc.
type Store struct {
	mu      sync.Mutex
	dir     string
	fs      vfs.FS
	opts    Options
	log     *file
	logSize int64
	// nextCompactAt delays the next automatic compaction after one failed.
	nextCompactAt int64
	t             table
	scratch       []byte
	err           error // sticky: set once the store is fenced
	closed        bool
}

// mutation is one change to apply: a put or a delete.
type mutation struct {
	op    byte
	key   string
	value []byte
}

// Open opens (creating if needed) the store in dir: it removes a leftover
// snapshot tmp file, loads meta.snapshot, replays meta.log over it and cuts
// a torn tail off the log. Corruption is reported as a *CorruptError that
// wraps ErrCorrupt or ErrVersion; a directory held by another Store gives
// ErrLocked.
func Open(dir string, opts Options) (*Store, error) {
	if opts.CompactBytes == 0 {
		opts.CompactBytes = DefaultCompactBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	fsys := vfs.Or(opts.FS)
	if err := vfs.MkdirAllDurable(fsys, dir); err != nil {
		return nil, fmt.Errorf("metalog: %w", err)
	}
	f, created, err := openLog(fsys, filepath.Join(dir, logName))
	if err != nil {
		return nil, err
	}
	s := &Store{dir: dir, fs: fsys, opts: opts, log: f, t: newTable()}
	if err := s.recover(created); err != nil {
		_ = f.Close() // the recovery error is the one to report
		return nil, err
	}
	return s, nil
}

// openLog opens the log file, creating it if needed.
func openLog(fsys vfs.FS, path string) (f *file, created bool, err error) {
	f, err = openFile(fsys, path, unix.O_RDWR)
	if errors.Is(err, os.ErrNotExist) {
		f, err = openFile(fsys, path, unix.O_RDWR|unix.O_CREAT)
		created = true
	}
	if err != nil {
		return nil, false, fmt.Errorf("metalog: open log: %w", err)
	}
	return f, created, nil
}

// recover runs Open's steps after the log file is open.
func (s *Store) recover(created bool) error {
	if err := lockFile(s.log); err != nil {
		return err
	}
	removed, err := s.removeLeftoverTmp()
	if err != nil {
		return err
	}
	if created || removed { // make the creation or removal durable
		if err := syncDir(s.fs, s.dir); err != nil {
			return err
		}
	}
	if err := readSnapshot(s.fs, s.dir, &s.t); err != nil {
		return err
	}
	if err := s.replayLog(); err != nil {
		return err
	}
	s.t.finishLoad()
	return nil
}

// removeLeftoverTmp deletes the tmp file of a compaction that crashed
// before its rename; the snapshot and log in place are still complete.
func (s *Store) removeLeftoverTmp() (removed bool, err error) {
	tmp := filepath.Join(s.dir, snapshotTmpName)
	err = s.fs.Remove(tmp)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("metalog: remove leftover snapshot tmp: %w", err)
	}
	s.opts.Logger.Info("metalog: removed snapshot tmp file of an interrupted compaction", "dir", s.dir)
	return true, nil
}

// replayLog applies meta.log over the loaded snapshot and truncates a torn
// tail. Replaying a log that a newer snapshot already covers (a crash
// between a compaction's rename and its log reset) is harmless: applying
// the same puts and deletes again in order gives the same map.
func (s *Store) replayLog() error {
	file := s.log.Name()
	b, err := s.log.readAll()
	if err != nil {
		return fmt.Errorf("metalog: read log: %w", err)
	}
	valid, err := replay(file, b, &s.t)
	if err != nil {
		return err
	}
	s.logSize = int64(valid)
	if valid == len(b) {
		return nil
	}
	s.opts.Logger.Warn("metalog: cutting torn tail of the log",
		"file", file, "offset", valid, "bytes", len(b)-valid)
	if err := s.log.Truncate(int64(valid)); err != nil {
		return fmt.Errorf("metalog: truncate torn tail: %w", err)
	}
	if err := s.log.Sync(); err != nil {
		return fmt.Errorf("metalog: fsync after truncate: %w", err)
	}
	return nil
}

// replay applies the records of log bytes b to t and returns the length of
// the valid prefix. A bad frame that is a torn tail ends the replay without
// error; any other defect is a *CorruptError at the bad record's offset.
func replay(file string, b []byte, t *table) (valid int, err error) {
	rest := b
	for len(rest) > 0 {
		off := len(b) - len(rest)
		r, next, err := parseRecord(rest)
		if err != nil {
			if isFrameError(err) && tornTail(b, off) {
				return off, nil
			}
			return off, corruptAt(file, off, err)
		}
		if err := applyLogRecord(r, t); err != nil {
			return off, corruptAt(file, off, err)
		}
		rest = next
	}
	return len(b), nil
}

func applyLogRecord(r record, t *table) error {
	switch r.op {
	case opPut:
		if err := checkEntry(r); err != nil {
			return err
		}
		t.put(string(r.key), bytes.Clone(r.value)) // do not pin the file buffer
	case opDelete:
		t.delete(string(r.key))
	default:
		return fmt.Errorf("%w: op %d in the log", ErrCorrupt, r.op)
	}
	return nil
}

// Put stores value under key. The store keeps its own copy of value.
func (s *Store) Put(key string, value []byte) error {
	if err := checkUserKey(key); err != nil {
		return err
	}
	if len(value) > MaxValueSize {
		return ErrTooLarge
	}
	return s.write(mutation{opPut, key, value})
}

// Delete removes key. Deleting a missing key writes nothing.
func (s *Store) Delete(key string) error {
	if err := checkUserKey(key); err != nil {
		return err
	}
	return s.write(mutation{op: opDelete, key: key})
}

func checkUserKey(key string) error {
	switch {
	case key == "":
		return ErrInvalidKey
	case len(key) > MaxKeySize:
		return ErrTooLarge
	case strings.HasPrefix(key, OffsetKeyPrefix) || strings.HasPrefix(key, TopicKeyPrefix):
		return fmt.Errorf("%w: %q is reserved for the typed helpers", ErrInvalidKey, key[:2])
	}
	return nil
}

// Get returns a copy of key's value.
func (s *Store) Get(key string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.t.m[key]
	if !ok {
		return nil, false
	}
	return bytes.Clone(v), true
}

// Range calls fn for every key with the given prefix, in ascending key
// order, until fn returns false. It iterates over a copy of the matching
// entries taken under the lock, so fn may call the Store; fn must not
// modify value (it may keep it).
func (s *Store) Range(prefix string, fn func(key string, value []byte) bool) {
	s.mu.Lock()
	entries := s.t.collect(nil, prefix)
	s.mu.Unlock()
	for _, e := range entries {
		if !fn(e.key, e.value) {
			return
		}
	}
}

// Stats reports the store's size.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Keys: len(s.t.m), LogBytes: s.logSize, LiveBytes: s.t.liveBytes}
}
