package reactor

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ringmq/ringmq/group"
	"golang.org/x/sys/unix"
)

// The log of one partition of the internal topic __consumer_offsets: the
// group coordinator's records (group.AppendRecord frames: length, CRC32C,
// version) after a file header. Persisted: never change.
//
//	offset size field
//	     0    7 magic    "RMQGLOG"
//	     7    1 version  groupLogVersion = 1
//	     8    … records  group.AppendRecord frames, in append order
//
// Appends are group commits: every record of a coordinator turn in one
// write and one fdatasync. Opening reads the whole file; a torn last frame
// (group.ErrTruncated: a crash during an append) is cut off, a damaged
// frame before the end refuses to open (never served). Compaction writes
// the coordinator's live state (Coordinator.Records, what a compacted log
// holds) to a temporary file, fsyncs it, renames it over the log and fsyncs the
// directory, so a crash leaves either the old or the new file.
//
// The file belongs to the coordinator goroutine: not safe for concurrent
// use, and off the reactors (its syscalls block).

const (
	groupLogMagic   = "RMQGLOG"
	groupLogVersion = 1
	groupLogDir     = "groups"
)

var groupLogHeader = append([]byte(groupLogMagic), groupLogVersion)

// groupLog is one open partition log.
type groupLog struct {
	path string
	f    *os.File
	size int64
	// base is the size after the last compaction (or at open): the live
	// state then. The file is compacted when it is over twice that.
	base int64
	buf  []byte
}

func groupLogPath(dataDir string, partition int) string {
	return filepath.Join(dataDir, groupLogDir, fmt.Sprintf("__consumer_offsets-%d.log", partition))
}

// openGroupLog opens (creating) a partition's log and returns its records.
func openGroupLog(path string) (*groupLog, []group.Record, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, nil, err
	}
	recs, good, err := parseGroupLog(data)
	if err != nil {
		return nil, nil, fmt.Errorf("group log %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, nil, err
	}
	l := &groupLog{path: path, f: f}
	if good < int64(len(data)) || len(data) == 0 {
		// A torn tail (or a new file): cut to the last whole frame.
		if len(data) == 0 {
			_, err = f.WriteAt(groupLogHeader, 0)
			good = int64(len(groupLogHeader))
		}
		if err == nil {
			err = f.Truncate(good)
		}
		if err == nil {
			err = f.Sync()
		}
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("group log %s: repair: %w", path, err)
		}
	}
	l.size, l.base = good, good
	return l, recs, nil
}

// parseGroupLog returns the records of a log file and the length of its
// whole frames; a cut last frame is left out, anything else wrong is an
// error.
func parseGroupLog(data []byte) ([]group.Record, int64, error) {
	if len(data) == 0 {
		return nil, 0, nil
	}
	if len(data) < len(groupLogHeader) || !bytes.Equal(data[:len(groupLogMagic)], []byte(groupLogMagic)) {
		return nil, 0, fmt.Errorf("%w: not a group log (bad magic)", group.ErrCorrupt)
	}
	if v := data[len(groupLogMagic)]; v != groupLogVersion {
		return nil, 0, fmt.Errorf("%w: group log version %d", group.ErrVersion, v)
	}
	rest := data[len(groupLogHeader):]
	var recs []group.Record
	for len(rest) > 0 {
		r, next, err := group.ParseRecord(rest)
		if errors.Is(err, group.ErrTruncated) {
			break
		}
		if err != nil {
			return nil, 0, fmt.Errorf("at byte %d: %w", len(data)-len(rest), err)
		}
		recs = append(recs, r)
		rest = next
	}
	return recs, int64(len(data) - len(rest)), nil
}

// append writes records as one write and makes them durable.
func (l *groupLog) append(recs []group.Record) error {
	if len(recs) == 0 {
		return nil
	}
	l.buf = l.buf[:0]
	for i := range recs {
		l.buf = group.AppendRecord(l.buf, &recs[i])
	}
	if _, err := l.f.WriteAt(l.buf, l.size); err != nil {
		return err
	}
	if err := unix.Fdatasync(int(l.f.Fd())); err != nil {
		return err
	}
	l.size += int64(len(l.buf))
	return nil
}

// needsCompaction reports whether the file is over limit bytes and more
// than twice its size after the last compaction. So the file stays
// within max(limit, 2 × live state) plus one turn's records.
func (l *groupLog) needsCompaction(limit int64) bool {
	return l.size > limit && l.size > 2*l.base
}

// compact rewrites the file as live, the whole state (so without
// tombstones): Coordinator.Records once every record is durable.
func (l *groupLog) compact(live []group.Record) error {
	data := append([]byte(nil), groupLogHeader...)
	for i := range live {
		data = group.AppendRecord(data, &live[i])
	}
	tmp := l.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err = f.Write(data); err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = os.Rename(tmp, l.path)
	}
	if err == nil {
		err = syncDir(filepath.Dir(l.path))
	}
	if err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	l.f.Close()
	l.f = f
	l.size, l.base = int64(len(data)), int64(len(data))
	return nil
}

func (l *groupLog) close() error { return l.f.Close() }

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
