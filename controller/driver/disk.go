package driver

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ringmq/ringmq/controller"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
)

// File names under the controller directory.
const (
	snapshotFile  = "snapshot"
	hardStateFile = "hardstate"
	logDir        = "log"
	tmpSuffix     = ".tmp"
	segSuffix     = ".log"
	segmentBytes  = 1 << 20 // default Disk.segBytes
)

// Disk is the durable Raft log of one controller node: a snapshot file, a
// hard state file and log segments. Owned by the driver's goroutine.
type Disk struct {
	fs     FS
	dir    string
	segs   []segment // by first index; the last is the active one
	active File      // the last segment, open for appends; nil when none
	last   uint64    // last entry index on disk (the snapshot index when none)
	buf    []byte

	segBytes int64 // a new segment starts past this size

}

// segment is one log file: entries first..first+len(offs)-1 at offs.
type segment struct {
	first uint64
	offs  []int64 // file offset of each entry
	size  int64
}

func (s *segment) last() uint64 { return s.first + uint64(len(s.offs)) - 1 }

func segName(first uint64) string { return fmt.Sprintf("%020d%s", first, segSuffix) }

func (d *Disk) path(parts ...string) string {
	return filepath.Join(append([]string{d.dir}, parts...)...)
}

// OpenDisk opens (or, when dir holds no snapshot, creates with the
// bootstrap snapshot of voters) the controller log in dir and loads it
// into a MemoryStorage for controller.NewNode. A torn tail of the last
// segment is truncated; other damage is ErrCorrupt.
func OpenDisk(fsys FS, dir string, voters []uint64) (*Disk, *raft.MemoryStorage, error) {
	d := &Disk{fs: fsys, dir: dir, segBytes: segmentBytes}
	if err := fsys.MkdirAll(d.path(logDir)); err != nil {
		return nil, nil, err
	}
	// The directories' names are durable only once their parents are
	// fsynced: without it a power cut can take the whole log of a node
	// that acknowledged entries (raft then panics at the restart).
	for _, parent := range []string{filepath.Dir(filepath.Clean(dir)), dir} {
		if err := fsys.SyncDir(parent); err != nil {
			return nil, nil, err
		}
	}
	st := raft.NewMemoryStorage()
	snap, err := d.loadSnapshot()
	if errors.Is(err, fs.ErrNotExist) {
		snap, err = controller.Bootstrap(st, voters)
		if err == nil {
			err = d.writeSnapshot(snap)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("controller driver: bootstrap: %w", err)
		}
		d.last = 1
		return d, st, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if err := st.ApplySnapshot(snap); err != nil {
		return nil, nil, err
	}
	hs, err := d.loadHardState()
	if err != nil {
		return nil, nil, err
	}
	ents, err := d.loadLog()
	if err != nil {
		return nil, nil, err
	}
	ents, err = d.afterSnapshot(snap, ents)
	if err != nil {
		return nil, nil, err
	}
	if err := st.Append(ents); err != nil {
		return nil, nil, err
	}
	d.last, _ = st.LastIndex()
	if hs != nil {
		if hs.GetCommit() > d.last {
			return nil, nil, fmt.Errorf("%w: hard state commit %d past the last entry %d",
				ErrCorrupt, hs.GetCommit(), d.last)
		}
		if err := st.SetHardState(hs); err != nil {
			return nil, nil, err
		}
	}
	return d, st, nil
}

// Voters are the voters recorded in the snapshot of a loaded storage.
func Voters(st *raft.MemoryStorage) []uint64 {
	snap, _ := st.Snapshot()
	return snap.GetMetadata().GetConfState().GetVoters()
}

func (d *Disk) loadSnapshot() (*pb.Snapshot, error) {
	_ = d.fs.Remove(d.path(snapshotFile + tmpSuffix))
	b, err := d.fs.ReadFile(d.path(snapshotFile))
	if err != nil {
		return nil, err
	}
	snap, rest, err := ParseSnapshot(b)
	if err == nil && len(rest) != 0 {
		err = fmt.Errorf("%w: %d bytes after the frame", ErrCorrupt, len(rest))
	}
	if errors.Is(err, errTorn) { // written whole and renamed: never torn
		err = fmt.Errorf("%w: cut short", ErrCorrupt)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.path(snapshotFile), err)
	}
	return snap, nil
}

func (d *Disk) loadHardState() (*pb.HardState, error) {
	_ = d.fs.Remove(d.path(hardStateFile + tmpSuffix))
	b, err := d.fs.ReadFile(d.path(hardStateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	hs, rest, err := ParseHardState(b)
	if err == nil && len(rest) != 0 {
		err = fmt.Errorf("%w: %d bytes after the frame", ErrCorrupt, len(rest))
	}
	if errors.Is(err, errTorn) {
		err = fmt.Errorf("%w: cut short", ErrCorrupt)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.path(hardStateFile), err)
	}
	return hs, nil
}

// loadLog reads every segment; entries must run on without a gap.
func (d *Disk) loadLog() ([]*pb.Entry, error) {
	names, err := d.fs.ReadDir(d.path(logDir))
	if err != nil {
		return nil, err
	}
	var ents []*pb.Entry
	for i, name := range names {
		first, err := strconv.ParseUint(strings.TrimSuffix(name, segSuffix), 10, 64)
		if !strings.HasSuffix(name, segSuffix) || err != nil {
			return nil, fmt.Errorf("%w: unexpected file %s", ErrCorrupt, d.path(logDir, name))
		}
		if len(ents) > 0 && first != ents[len(ents)-1].GetIndex()+1 {
			return nil, fmt.Errorf("%w: segment %s does not follow entry %d", ErrCorrupt, name,
				ents[len(ents)-1].GetIndex())
		}
		seg, segEnts, err := d.loadSegment(name, first, i == len(names)-1)
		if err != nil {
			return nil, err
		}
		ents = append(ents, segEnts...)
		if len(seg.offs) == 0 { // an empty last segment (torn at its first entry)
			if err := d.fs.Remove(d.path(logDir, name)); err != nil {
				return nil, err
			}
			continue
		}
		d.segs = append(d.segs, seg)
	}
	return ents, nil
}

// loadSegment reads one segment. In the last segment a torn tail is cut
// off: a frame running past the end of the file, zeros to the end, or a
// bad checksum on the frame that ends the file.
func (d *Disk) loadSegment(name string, first uint64, last bool) (segment, []*pb.Entry, error) {
	path := d.path(logDir, name)
	b, err := d.fs.ReadFile(path)
	if err != nil {
		return segment{}, nil, err
	}
	seg := segment{first: first}
	var ents []*pb.Entry
	for src := b; len(src) > 0; {
		off := int64(len(b) - len(src))
		e, rest, err := ParseEntry(src)
		if err == nil && e.GetIndex() != first+uint64(len(ents)) {
			err = fmt.Errorf("%w: entry %d where %d belongs", ErrCorrupt, e.GetIndex(), first+uint64(len(ents)))
			return segment{}, nil, fmt.Errorf("%s at %d: %w", path, off, err)
		}
		if err != nil {
			if last && tornTail(src, err) {
				if err := d.truncate(path, off); err != nil {
					return segment{}, nil, err
				}
				break
			}
			return segment{}, nil, fmt.Errorf("%s at %d: %w", path, off, err)
		}
		seg.offs = append(seg.offs, off)
		seg.size = int64(len(b) - len(rest))
		ents = append(ents, e)
		src = rest
	}
	return seg, ents, nil
}

// tornTail tells a torn last write from corruption.
func tornTail(src []byte, err error) bool {
	if errors.Is(err, errTorn) {
		return true
	}
	zeros := true
	for _, c := range src {
		if c != 0 {
			zeros = false
			break
		}
	}
	if zeros {
		return true
	}
	_, _, rest, lenErr := splitFrameLen(src)
	return lenErr == nil && len(rest) == 0
}

// splitFrameLen splits by the length field alone.
func splitFrameLen(src []byte) (frame, body, rest []byte, err error) {
	if len(src) < frameHeader {
		return nil, nil, nil, errTorn
	}
	n := uint64(src[0]) | uint64(src[1])<<8 | uint64(src[2])<<16 | uint64(src[3])<<24
	if n < 2 || n > maxFrame || uint64(len(src)-frameHeader) < n {
		return nil, nil, nil, ErrCorrupt
	}
	return src[:frameHeader+n], src[frameHeader : frameHeader+n], src[frameHeader+n:], nil
}

func (d *Disk) truncate(path string, size int64) error {
	f, err := d.fs.OpenAppend(path)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// afterSnapshot keeps the entries after the snapshot. When the log holds
// the snapshot's index at another term, or ends before it, the log is a
// stale one that the snapshot replaced (a crash before its segments were
// removed) and none of it is kept.
func (d *Disk) afterSnapshot(snap *pb.Snapshot, ents []*pb.Entry) ([]*pb.Entry, error) {
	idx, term := snap.GetMetadata().GetIndex(), snap.GetMetadata().GetTerm()
	if len(ents) == 0 {
		return nil, nil
	}
	if ents[0].GetIndex() > idx+1 {
		return nil, fmt.Errorf("%w: log starts at %d, after the snapshot at %d", ErrCorrupt,
			ents[0].GetIndex(), idx)
	}
	lastIdx := ents[len(ents)-1].GetIndex()
	if lastIdx <= idx || (ents[0].GetIndex() <= idx && ents[idx-ents[0].GetIndex()].GetTerm() != term) {
		if err := d.dropLog(); err != nil {
			return nil, err
		}
		return nil, nil
	}
	return ents[idx+1-ents[0].GetIndex():], nil
}

// Save makes rd durable, in Raft's order: the leader's snapshot, the
// entries, the hard state; then this node's own snapshot and the segments
// it covers are removed. Call Node.Advance and send rd.Messages only after
// it returns nil; an error leaves the disk as a crash would, so the driver
// stops.
func (d *Disk) Save(rd controller.Ready) error {
	if rd.Snapshot != nil {
		if err := d.writeSnapshot(rd.Snapshot); err != nil {
			return err
		}
		if err := d.dropLog(); err != nil {
			return err
		}
		d.last = rd.Snapshot.GetMetadata().GetIndex()
	}
	if err := d.append(rd.Entries); err != nil {
		return err
	}
	if rd.HardState != nil {
		d.buf = AppendHardState(d.buf[:0], rd.HardState)
		if err := d.replace(hardStateFile, d.buf); err != nil {
			return err
		}
	}
	if rd.LocalSnapshot != nil {
		if err := d.writeSnapshot(rd.LocalSnapshot); err != nil {
			return err
		}
		return d.compact(rd.CompactIndex)
	}
	return nil
}

func (d *Disk) writeSnapshot(s *pb.Snapshot) error {
	return d.replace(snapshotFile, AppendSnapshot(nil, s))
}

// replace writes name atomically: a temporary file, fsync, rename, fsync
// of the directory.
func (d *Disk) replace(name string, data []byte) error {
	tmp := d.path(name + tmpSuffix)
	f, err := d.fs.Create(tmp)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = d.fs.Rename(tmp, d.path(name))
	}
	if err == nil {
		err = d.fs.SyncDir(d.dir)
	}
	if err != nil {
		return fmt.Errorf("controller driver: write %s: %w", d.path(name), err)
	}
	return nil
}

// append writes entries after the log, first cutting off any entries from
// their first index on (a new leader's log replaces a follower's tail).
func (d *Disk) append(ents []*pb.Entry) error {
	if len(ents) == 0 {
		return nil
	}
	first := ents[0].GetIndex()
	if first <= d.last {
		if err := d.cutFrom(first); err != nil {
			return err
		}
	}
	if first != d.last+1 {
		panic(fmt.Sprintf("BUG: controller driver: append at %d after %d", first, d.last))
	}
	if err := d.ensureActive(first); err != nil {
		return err
	}
	seg := &d.segs[len(d.segs)-1]
	d.buf = d.buf[:0]
	for _, e := range ents {
		seg.offs = append(seg.offs, seg.size+int64(len(d.buf)))
		d.buf = AppendEntry(d.buf, e)
	}
	seg.size += int64(len(d.buf))
	d.last = ents[len(ents)-1].GetIndex()
	if _, err := d.active.Write(d.buf); err != nil {
		return fmt.Errorf("controller driver: append: %w", err)
	}
	if err := d.active.Sync(); err != nil {
		return fmt.Errorf("controller driver: append: %w", err)
	}
	return nil
}

// ensureActive opens the segment the next entry, first, goes to: the
// last one, or a new one when there is none or it is full.
func (d *Disk) ensureActive(first uint64) error {
	if len(d.segs) > 0 && d.segs[len(d.segs)-1].size < d.segBytes {
		if d.active != nil {
			return nil
		}
		f, err := d.fs.OpenAppend(d.path(logDir, segName(d.segs[len(d.segs)-1].first)))
		if err != nil {
			return err
		}
		d.active = f
		return nil
	}
	if err := d.closeActive(); err != nil {
		return err
	}
	f, err := d.fs.Create(d.path(logDir, segName(first)))
	if err != nil {
		return err
	}
	if err := d.fs.SyncDir(d.path(logDir)); err != nil {
		f.Close()
		return err
	}
	d.active = f
	d.segs = append(d.segs, segment{first: first})
	return nil
}

func (d *Disk) closeActive() error {
	if d.active == nil {
		return nil
	}
	err := d.active.Close()
	d.active = nil
	return err
}

// cutFrom removes the entries from index on.
func (d *Disk) cutFrom(index uint64) error {
	if err := d.closeActive(); err != nil {
		return err
	}
	for len(d.segs) > 0 {
		seg := &d.segs[len(d.segs)-1]
		name := d.path(logDir, segName(seg.first))
		if seg.first >= index {
			if err := d.fs.Remove(name); err != nil {
				return err
			}
			d.segs = d.segs[:len(d.segs)-1]
			continue
		}
		if seg.last() >= index {
			off := seg.offs[index-seg.first]
			if err := d.truncate(name, off); err != nil {
				return err
			}
			seg.offs, seg.size = seg.offs[:index-seg.first], off
		}
		break
	}
	d.last = index - 1
	return d.fs.SyncDir(d.path(logDir))
}

// compact removes the segments whose entries are all at or below index.
func (d *Disk) compact(index uint64) error {
	n := 0
	for n < len(d.segs) && d.segs[n].last() <= index && n < len(d.segs)-1 {
		if err := d.fs.Remove(d.path(logDir, segName(d.segs[n].first))); err != nil {
			return err
		}
		n++
	}
	d.segs = d.segs[n:]
	return nil
}

// dropLog removes every segment.
func (d *Disk) dropLog() error {
	if err := d.closeActive(); err != nil {
		return err
	}
	names, err := d.fs.ReadDir(d.path(logDir))
	if err != nil {
		return err
	}
	for _, name := range names {
		if err := d.fs.Remove(d.path(logDir, name)); err != nil {
			return err
		}
	}
	d.segs = nil
	return d.fs.SyncDir(d.path(logDir))
}

// Close closes the active segment.
func (d *Disk) Close() error { return d.closeActive() }
