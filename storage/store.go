package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"sort"
	"strconv"
	"sync"

	"github.com/ringmq/ringmq/storage/vfs"
	"golang.org/x/sys/unix"
)

// StoreOptions configure a Store.
type StoreOptions struct {
	// ArchiveDir is the root of the cold tier (same layout as the data
	// directory's topics/); "" disables archival.
	ArchiveDir string
	// Logger receives warnings (nil: slog.Default()).
	Logger *slog.Logger
	// FS is the file system the store works on; nil means vfs.OS (the
	// server). Crash tests pass a vfs.Mem.
	FS vfs.FS
	// OnIndexFault, when set, is called (on the log's goroutine) each time
	// a read finds an offset index entry that does not lead to the batch
	// it looks for and falls back to scanning the segment.
	OnIndexFault func()
}

// Store is a data directory: it holds the lock that keeps a second server
// out, knows whether the last stop was clean, creates, opens and deletes
// partition logs, and runs the background worker they share. Its methods
// are safe for concurrent use; the Logs it returns are not.
type Store struct {
	dir    string
	fs     vfs.FS
	opts   StoreOptions
	logger *slog.Logger
	lockFd int
	clean  bool
	worker *worker
	roller *worker // the roll lane: next segments and their renames (roll.go)

	mu      sync.Mutex
	logs    map[string]*Log // open, and being opened (nil)
	opens   sync.WaitGroup  // opens in progress (Close waits for them)
	unclean bool            // some log was closed uncleanly
	closed  bool
}

// Partition names one partition on disk.
type Partition struct {
	Topic     string
	Partition uint32
}

// OpenStore locks dir (creating it if needed) and removes its clean-shutdown
// marker, remembering whether it was there. A directory locked by another
// process fails with ErrLocked.
func OpenStore(dir string, opts StoreOptions) (*Store, error) {
	s := &Store{dir: dir, fs: hookedFS{vfs.Or(opts.FS)}, opts: opts, logger: opts.Logger, lockFd: -1, logs: map[string]*Log{}}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	if err := vfs.MkdirAllDurable(s.fs, filepath.Join(dir, topicsDir)); err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", dir, err)
	}
	if err := s.lock(); err != nil {
		return nil, err
	}
	marker := filepath.Join(dir, cleanName)
	if _, err := s.fs.Stat(marker); err == nil {
		s.clean = true
		if err := s.fs.Remove(marker); err != nil {
			closeFd(s.fs, s.lockFd)
			return nil, fmt.Errorf("storage: remove %s: %w", marker, err)
		}
		if err := syncDir(s.fs, dir); err != nil {
			closeFd(s.fs, s.lockFd)
			return nil, fmt.Errorf("storage: %w", err)
		}
	}
	s.worker = startWorker()
	s.roller = startWorker()
	return s, nil
}

func (s *Store) lock() error {
	path := filepath.Join(s.dir, lockName)
	fd, err := openFile(s.fs, path, unix.O_RDWR|unix.O_CREAT)
	if err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	if err := s.fs.Lock(fd); err != nil {
		s.fs.Close(fd)
		if errors.Is(err, unix.EWOULDBLOCK) {
			return fmt.Errorf("%w: %s (lock file %s is held; is another ringmq running on it?)", ErrLocked, s.dir, path)
		}
		return fmt.Errorf("storage: lock %s: %w", path, err)
	}
	s.lockFd = fd
	return nil
}

// Dir is the data directory.
func (s *Store) Dir() string { return s.dir }

// WasClean reports whether the previous process closed the store cleanly
// (its marker was present at open).
func (s *Store) WasClean() bool { return s.clean }

func partitionKey(topic string, partition uint32) string {
	return topic + "/" + strconv.FormatUint(uint64(partition), 10)
}

func (s *Store) partitionDir(root, topic string, partition uint32) string {
	return filepath.Join(root, topicsDir, topic, strconv.FormatUint(uint64(partition), 10))
}

// CreateLog creates an empty partition log. It fails with ErrExists when
// the partition is on disk.
func (s *Store) CreateLog(topic string, partition uint32, cfg LogConfig) (*Log, error) {
	return s.open(topic, partition, cfg, modeCreate)
}

// OpenLog opens a partition log from disk, recovering it first after an
// unclean stop, or creates it when it is not on disk. An error wrapping
// ErrCorrupt means the partition must not be served; other partitions are
// unaffected.
func (s *Store) OpenLog(topic string, partition uint32, cfg LogConfig) (*Log, error) {
	return s.open(topic, partition, cfg, modeOpenOrCreate)
}

// OpenExistingLog is OpenLog without creating: ErrNotFound when the
// partition is not on disk (tools, tests).
func (s *Store) OpenExistingLog(topic string, partition uint32, cfg LogConfig) (*Log, error) {
	return s.open(topic, partition, cfg, modeOpen)
}

type openMode uint8

const (
	modeOpen openMode = iota
	modeCreate
	modeOpenOrCreate
)

func (s *Store) open(topic string, partition uint32, cfg LogConfig, mode openMode) (*Log, error) {
	if err := validatePartition(topic, partition); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	key := partitionKey(topic, partition)
	s.mu.Lock()
	if _, busy := s.logs[key]; busy || s.closed {
		s.mu.Unlock()
		if busy {
			return nil, fmt.Errorf("storage: partition %s is already open", key)
		}
		return nil, ErrClosed
	}
	s.logs[key] = nil // recovery runs unlocked: partitions open in parallel
	s.opens.Add(1)
	s.mu.Unlock()
	defer s.opens.Done()
	l, err := s.openUnlocked(topic, partition, cfg, mode)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		delete(s.logs, key)
		return nil, err
	}
	s.logs[key] = l
	return l, nil
}

func (s *Store) openUnlocked(topic string, partition uint32, cfg LogConfig, mode openMode) (*Log, error) {
	create := mode == modeCreate
	if mode == modeOpenOrCreate {
		_, err := s.fs.Stat(s.partitionDir(s.dir, topic, partition))
		create = errors.Is(err, fs.ErrNotExist)
	}
	return openLog(s, topic, partition, cfg, create)
}

// logClosed is called by Log.Close.
func (s *Store) logClosed(l *Log, clean bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.logs, partitionKey(l.topic, l.partition))
	if !clean {
		s.unclean = true
	}
}

// DeleteLog closes l (releasing its files; Views stay valid) and deletes
// its partition from disk.
func (s *Store) DeleteLog(l *Log) error {
	l.releaseAll()
	l.closed = true
	s.logClosed(l, true)
	return s.DeletePartition(l.topic, l.partition)
}

// DeletePartition removes a closed partition's files (hot and archived).
func (s *Store) DeletePartition(topic string, partition uint32) error {
	if err := validatePartition(topic, partition); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, open := s.logs[partitionKey(topic, partition)]; open {
		return fmt.Errorf("storage: delete %s/%d: partition is open", topic, partition)
	}
	dir := s.partitionDir(s.dir, topic, partition)
	if _, err := s.fs.Stat(dir); err != nil {
		return fmt.Errorf("%w: %s/%d", ErrNotFound, topic, partition)
	}
	roots := []string{s.dir}
	if s.opts.ArchiveDir != "" {
		roots = append(roots, s.opts.ArchiveDir)
	}
	for _, root := range roots {
		if err := s.fs.RemoveAll(s.partitionDir(root, topic, partition)); err != nil {
			return fmt.Errorf("storage: delete %s/%d: %w", topic, partition, err)
		}
		s.fs.Remove(filepath.Join(root, topicsDir, topic)) // only if empty
	}
	return nil
}

// RemoveTopicDir removes whatever is left of a topic's directory once
// none of its partitions is open: after a failed create, whose own
// cleanup may itself have run out of descriptors.
func (s *Store) RemoveTopicDir(topic string) error {
	if err := validatePartition(topic, 0); err != nil {
		return err
	}
	return s.fs.RemoveAll(filepath.Join(s.dir, topicsDir, topic))
}

// Partitions lists the partitions on disk, sorted.
func (s *Store) Partitions() ([]Partition, error) {
	topics, err := s.fs.ReadDir(filepath.Join(s.dir, topicsDir))
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	var out []Partition
	for _, t := range topics {
		parts, err := s.fs.ReadDir(filepath.Join(s.dir, topicsDir, t.Name()))
		if err != nil || !t.IsDir() {
			continue
		}
		for _, p := range parts {
			n, err := strconv.ParseUint(p.Name(), 10, 32)
			if err == nil && p.IsDir() && strconv.FormatUint(n, 10) == p.Name() {
				out = append(out, Partition{Topic: t.Name(), Partition: uint32(n)})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out, nil
}

// MarkClean writes the clean-shutdown marker now. It fails when a log is
// still open or one closed uncleanly (Close then writes no marker either).
func (s *Store) MarkClean() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case len(s.logs) > 0:
		return fmt.Errorf("storage: clean-shutdown marker not written: %d partitions still open", len(s.logs))
	case s.unclean:
		return fmt.Errorf("storage: clean-shutdown marker not written: a partition closed uncleanly")
	}
	return writeMarker(s.fs, s.dir)
}

// Close closes every log still open (they must not be in use), finishes
// background jobs, writes the clean-shutdown marker when every log of this
// run closed cleanly, and releases the lock.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.opens.Wait()
	s.mu.Lock()
	open := make([]*Log, 0, len(s.logs))
	for _, l := range s.logs {
		open = append(open, l)
	}
	s.mu.Unlock()
	var errs []error
	for _, l := range open {
		errs = append(errs, l.Close())
	}
	s.worker.stop()
	s.roller.stop()
	s.mu.Lock()
	clean := !s.unclean
	s.mu.Unlock()
	if clean {
		errs = append(errs, writeMarker(s.fs, s.dir))
	}
	closeFd(s.fs, s.lockFd)
	return errors.Join(errs...)
}

func writeMarker(fsys vfs.FS, dir string) error {
	fd, err := openFile(fsys, filepath.Join(dir, cleanName), unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC)
	if err == nil {
		_, err = fsys.Pwrite(fd, []byte("ringmq closed cleanly\n"), 0)
		err = errors.Join(err, fsys.Fsync(fd), fsys.Close(fd))
	}
	if err == nil {
		err = syncDir(fsys, dir)
	}
	if err != nil {
		return fmt.Errorf("storage: write clean-shutdown marker: %w", err)
	}
	return nil
}
