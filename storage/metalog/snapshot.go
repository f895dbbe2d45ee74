package metalog

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ringmq/ringmq/storage/vfs"
	"golang.org/x/sys/unix"
)

// Snapshot header. Persisted: never change.
const (
	snapshotMagic      = "RMQMSNAP"
	snapshotVersion    = 1
	snapshotHeaderSize = len(snapshotMagic) + 1
	endValueSize       = 8 // the end record's value: u64 entry count
)

// appendSnapshotHeader appends the snapshot file header to dst.
func appendSnapshotHeader(dst []byte) []byte {
	return append(append(dst, snapshotMagic...), snapshotVersion)
}

// parseSnapshotHeader checks the header at the start of src and returns the
// bytes after it.
func parseSnapshotHeader(src []byte) (rest []byte, err error) {
	if len(src) < snapshotHeaderSize || string(src[:len(snapshotMagic)]) != snapshotMagic {
		return src, fmt.Errorf("%w: not a metalog snapshot (bad magic)", ErrCorrupt)
	}
	if v := src[len(snapshotMagic)]; v != snapshotVersion {
		return src, fmt.Errorf("%w: snapshot version %d", ErrVersion, v)
	}
	return src[snapshotHeaderSize:], nil
}

// appendEndRecord appends the trailer that closes a snapshot of count entries.
func appendEndRecord(dst []byte, count uint64) []byte {
	var v [endValueSize]byte
	binary.LittleEndian.PutUint64(v[:], count)
	return appendRecord(dst, opEnd, "", v[:])
}

// loadSnapshot decodes a whole snapshot file into t. A snapshot is written
// atomically (tmp file, fsync, rename), so it has no torn tail: any defect,
// a missing end record included, is corruption. Keys must be strictly
// ascending. Errors are *CorruptError naming file.
func loadSnapshot(file string, b []byte, t *table) error {
	rest, err := parseSnapshotHeader(b)
	if err != nil {
		return corruptAt(file, 0, err)
	}
	var count uint64
	prev := ""
	for {
		off := len(b) - len(rest)
		var r record
		r, rest, err = parseRecord(rest)
		switch {
		case err != nil:
			return corruptAt(file, off, err)
		case r.op == opEnd:
			return checkSnapshotEnd(file, off, r, count, len(rest))
		case r.op != opPut:
			return corruptAt(file, off, fmt.Errorf("%w: op %d in a snapshot", ErrCorrupt, r.op))
		case count > 0 && string(r.key) <= prev:
			return corruptAt(file, off, fmt.Errorf("%w: snapshot keys out of order", ErrCorrupt))
		}
		if err := checkEntry(r); err != nil {
			return corruptAt(file, off, err)
		}
		prev = string(r.key)
		t.put(prev, bytes.Clone(r.value)) // do not pin the file buffer
		count++
	}
}

func checkSnapshotEnd(file string, off int, r record, count uint64, trailing int) error {
	switch {
	case len(r.key) != 0 || len(r.value) != endValueSize:
		return corruptAt(file, off, fmt.Errorf("%w: malformed end record", ErrCorrupt))
	case binary.LittleEndian.Uint64(r.value) != count:
		return corruptAt(file, off, fmt.Errorf("%w: end record counts %d entries, found %d",
			ErrCorrupt, binary.LittleEndian.Uint64(r.value), count))
	case trailing != 0:
		return corruptAt(file, off, fmt.Errorf("%w: %d bytes after the end record", ErrCorrupt, trailing))
	}
	return nil
}

// writeSnapshot writes t as dir/meta.snapshot: into a tmp file, fsync'd,
// renamed over the old snapshot, and the directory fsync'd. On error the
// tmp file is removed and the previous snapshot is still in place (or the
// new one, if only the final directory fsync failed).
func writeSnapshot(fsys vfs.FS, dir string, t *table) (err error) {
	tmp := filepath.Join(dir, snapshotTmpName)
	f, err := openFile(fsys, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC)
	if err != nil {
		return fmt.Errorf("metalog: create snapshot: %w", err)
	}
	defer func() {
		if err != nil {
			_ = f.Close() // may already be closed; the write error matters
			_ = fsys.Remove(tmp)
		}
	}()
	w := bufio.NewWriterSize(f, 256<<10)
	buf := appendSnapshotHeader(nil)
	for _, k := range t.keys {
		buf = appendRecord(buf, opPut, k, t.m[k])
		if len(buf) >= 64<<10 {
			_, _ = w.Write(buf) // bufio.Writer errors are sticky: checked at Flush
			buf = buf[:0]
		}
	}
	buf = appendEndRecord(buf, uint64(len(t.keys)))
	_, _ = w.Write(buf)
	if err := w.Flush(); err != nil {
		return fmt.Errorf("metalog: write snapshot: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("metalog: fsync snapshot: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("metalog: close snapshot: %w", err)
	}
	if err := fsys.Rename(tmp, filepath.Join(dir, snapshotName)); err != nil {
		return fmt.Errorf("metalog: rename snapshot: %w", err)
	}
	return syncDir(fsys, dir)
}

// readSnapshot loads dir/meta.snapshot into t if it exists.
func readSnapshot(fsys vfs.FS, dir string, t *table) error {
	file := filepath.Join(dir, snapshotName)
	b, err := fsys.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("metalog: read snapshot: %w", err)
	}
	return loadSnapshot(file, b, t)
}
