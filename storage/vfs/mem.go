package vfs

import (
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// MemFdBase is Mem's first descriptor number, far above the process's own
// descriptors so that one passed to the kernel by mistake fails (EBADF).
const MemFdBase = 1 << 24

// CrashSector is the granularity of a torn write: at a crash each
// CrashSector-byte block of unsynced data is kept or lost as a whole.
const CrashSector = SectorSize

// Mem is an in-memory file system that can crash. Each file has its
// current contents and its durable contents (as of its last Fdatasync,
// Fsync or Msync); each directory its current names and its durable names
// (as of its last Fsync) plus the name changes made since, in order.
// Crash returns the file system a power cut would leave, chosen by a
// seeded generator:
//
//   - names: each directory keeps its durable names plus a random prefix
//     of the changes since (create, remove, rename: a journaling file
//     system commits them in order); a rename is atomic: across
//     directories its unlink from the source is kept only if its link in
//     the target is.
//   - data: a file whose size changed since its last sync comes back with
//     either size; each CrashSector block that differs from the durable
//     contents comes back all new, all old, or block by block at random
//     (one of the three per file), so unsynced writes, truncations and
//     writes through mappings are lost or torn.
//
// Everything Mem does not model is stricter or equal to Linux: an fsync of
// a file does not make its name durable; there are no holes (SeekHole is
// the size), no space limit and no descriptor limit.
type Mem struct {
	mu     sync.Mutex
	root   *node
	fds    map[int]*memFd
	nextFd int
	maps   map[*byte]*node
	seq    uint64 // numbers name changes
	syncs  int    // sync calls so far (Fdatasync, Fsync, Msync)
	// crashAt, when > 0, makes sync call number crashAt take the crash
	// image (before it syncs anything) into image.
	crashAt  int
	crashRng *rand.Rand
	image    *Mem
}

type node struct {
	dir bool
	// file
	data   []byte // current contents, len is the size; [len:cap] is zero
	synced []byte // durable contents
	maps   int    // live mappings (the backing array must not move)
	locked *memFd
	// directory
	names       map[string]*node
	syncedNames map[string]*node
	changes     []nameChange
}

// nameChange is one change to a directory's names: name now refers to n
// (nil: removed), and unlink (if not "") is removed with it (a rename).
type nameChange struct {
	name   string
	n      *node
	unlink string
	seq    uint64
	// link, for the unlink half of a rename across directories: the
	// target directory and the seq of its link change.
	linkDir *node
	linkSeq uint64
}

type memFd struct {
	n    *node
	path string
}

// NewMem returns an empty file system holding only "/".
func NewMem() *Mem {
	return &Mem{root: newDir(), fds: map[int]*memFd{}, nextFd: MemFdBase, maps: map[*byte]*node{}}
}

func newDir() *node {
	return &node{dir: true, names: map[string]*node{}, syncedNames: map[string]*node{}}
}

// Syncs is how many sync calls (Fdatasync, Fsync, Msync) were made.
func (m *Mem) Syncs() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.syncs
}

// CrashAtSync arranges for sync call number k (counted from 1 over the
// file system's life) to take the crash image, chosen by rng, just before
// it makes anything durable; Image returns it. The file system carries on
// normally afterwards.
func (m *Mem) CrashAtSync(k int, rng *rand.Rand) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.crashAt, m.crashRng, m.image = k, rng, nil
}

// Image is the crash image taken by CrashAtSync, nil while not taken.
func (m *Mem) Image() *Mem {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.image
}

// Crash returns what a power cut now would leave on disk, chosen by rng;
// a nil rng loses everything not durable (the strictest outcome). m itself is unchanged (its users go on with the state before the crash;
// drop them).
func (m *Mem) Crash(rng *rand.Rand) *Mem {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.crashLocked(rng)
}

func (m *Mem) crashLocked(rng *rand.Rand) *Mem {
	out := NewMem()
	cr := &crasher{rng: rng, done: map[*node]*node{}, kept: map[*node]int{}}
	out.root = cr.node(m.root)
	return out
}

// crasher builds a crash image: done maps old nodes to new ones, kept is
// how many of a directory's changes since its last fsync survive.
type crasher struct {
	rng  *rand.Rand
	done map[*node]*node
	kept map[*node]int
}

func (cr *crasher) keptOf(d *node) int {
	k, ok := cr.kept[d]
	if !ok {
		k = intN(cr.rng, len(d.changes)+1)
		cr.kept[d] = k
	}
	return k
}

// linked reports whether the link change seq of directory d survives.
func (cr *crasher) linked(d *node, seq uint64) bool {
	for i, ch := range d.changes {
		if ch.seq == seq {
			return i < cr.keptOf(d)
		}
	}
	return true // made durable by an fsync of d
}

func (cr *crasher) node(n *node) *node {
	if c, ok := cr.done[n]; ok {
		return c
	}
	var c *node
	if n.dir {
		names := cloneNames(n.syncedNames)
		for _, ch := range n.changes[:cr.keptOf(n)] {
			if ch.linkDir == nil || cr.linked(ch.linkDir, ch.linkSeq) {
				apply(names, ch)
			}
		}
		c = newDir()
		cr.done[n] = c
		for _, name := range sortedNames(names) {
			c.names[name] = cr.node(names[name])
		}
		c.syncedNames = cloneNames(c.names)
	} else {
		c = &node{data: crashData(n, cr.rng)}
		c.synced = slices.Clone(c.data)
		cr.done[n] = c
	}
	return c
}

func apply(names map[string]*node, ch nameChange) {
	if ch.unlink != "" {
		delete(names, ch.unlink)
	}
	if ch.n == nil {
		delete(names, ch.name)
	} else {
		names[ch.name] = ch.n
	}
}

func crashData(n *node, rng *rand.Rand) []byte {
	cur, dur := len(n.data), len(n.synced)
	size := cur
	if cur != dur && intN(rng, 2) == 0 {
		size = dur
	}
	out := make([]byte, size)
	copy(out, n.synced)
	mode := 1 // 0: keep the new blocks, 1: the old, 2: at random
	if rng != nil {
		mode = rng.IntN(3)
	}
	for off := 0; off < min(size, cur); off += CrashSector {
		end := min(off+CrashSector, size, cur)
		if string(out[off:end]) == string(n.data[off:end]) {
			continue
		}
		if mode == 0 || mode == 2 && rng.IntN(2) == 0 {
			copy(out[off:end], n.data[off:end])
		}
	}
	return out
}

// intN is rng.IntN(n), or 0 without a generator (lose everything).
func intN(rng *rand.Rand, n int) int {
	if rng == nil {
		return 0
	}
	return rng.IntN(n)
}

func cloneNames(m map[string]*node) map[string]*node {
	out := make(map[string]*node, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func sortedNames(m map[string]*node) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// syncing counts a sync call and takes the crash image when it is due.
func (m *Mem) syncing() {
	m.syncs++
	if m.syncs == m.crashAt && m.image == nil {
		m.image = m.crashLocked(m.crashRng)
	}
}

func split(p string) []string {
	p = path.Clean("/" + p)
	if p == "/" {
		return nil
	}
	return strings.Split(p[1:], "/")
}

// lookup returns the directory holding p's last element, that name, and
// the node it names (nil when absent).
func (m *Mem) lookup(p string) (parent *node, name string, n *node, err error) {
	parts := split(p)
	if len(parts) == 0 {
		return nil, "", m.root, nil
	}
	d := m.root
	for _, part := range parts[:len(parts)-1] {
		next, ok := d.names[part]
		switch {
		case !ok:
			return nil, "", nil, unix.ENOENT
		case !next.dir:
			return nil, "", nil, unix.ENOTDIR
		}
		d = next
	}
	name = parts[len(parts)-1]
	return d, name, d.names[name], nil
}

func (m *Mem) link(d *node, name string, n *node) uint64 {
	m.seq++
	d.names[name] = n
	d.changes = append(d.changes, nameChange{name: name, n: n, seq: m.seq})
	return m.seq
}

func (m *Mem) unlink(d *node, name string) {
	m.seq++
	delete(d.names, name)
	d.changes = append(d.changes, nameChange{name: name, seq: m.seq})
}

func pathErr(op, p string, err error) error {
	return &os.PathError{Op: op, Path: p, Err: err}
}

// Open implements FS.
func (m *Mem) Open(p string, flags int) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	parent, name, n, err := m.lookup(p)
	if err != nil {
		return -1, pathErr("open", p, err)
	}
	switch {
	case n == nil && flags&unix.O_CREAT == 0:
		return -1, pathErr("open", p, unix.ENOENT)
	case n == nil:
		n = &node{}
		m.link(parent, name, n)
	case flags&unix.O_CREAT != 0 && flags&unix.O_EXCL != 0:
		return -1, pathErr("open", p, unix.EEXIST)
	case flags&unix.O_DIRECTORY != 0 && !n.dir:
		return -1, pathErr("open", p, unix.ENOTDIR)
	case n.dir && flags&(unix.O_WRONLY|unix.O_RDWR) != 0:
		return -1, pathErr("open", p, unix.EISDIR)
	}
	if flags&unix.O_TRUNC != 0 && !n.dir {
		n.truncate(0)
	}
	fd := m.nextFd
	m.nextFd++
	m.fds[fd] = &memFd{n: n, path: p}
	return fd, nil
}

func (m *Mem) file(fd int) (*memFd, error) {
	f, ok := m.fds[fd]
	if !ok {
		return nil, unix.EBADF
	}
	return f, nil
}

// Close implements FS.
func (m *Mem) Close(fd int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, err := m.file(fd)
	if err != nil {
		return err
	}
	if f.n.locked == f {
		f.n.locked = nil
	}
	delete(m.fds, fd)
	return nil
}

// Pread implements FS.
func (m *Mem) Pread(fd int, b []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, err := m.file(fd)
	if err != nil {
		return 0, err
	}
	if f.n.dir {
		return 0, unix.EISDIR
	}
	if off >= int64(len(f.n.data)) {
		return 0, nil
	}
	return copy(b, f.n.data[off:]), nil
}

// Pwrite implements FS.
func (m *Mem) Pwrite(fd int, b []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, err := m.file(fd)
	if err != nil {
		return 0, err
	}
	if f.n.dir {
		return 0, unix.EISDIR
	}
	f.n.grow(off + int64(len(b)))
	return copy(f.n.data[off:], b), nil
}

// grow extends the file to size bytes (zeros) if it is shorter.
func (n *node) grow(size int64) {
	if size <= int64(len(n.data)) {
		return
	}
	if size > int64(cap(n.data)) {
		if n.maps > 0 {
			panic("BUG: vfs: a mapped file grew past its buffer")
		}
		nd := make([]byte, len(n.data), max(size, 2*int64(cap(n.data))))
		copy(nd, n.data)
		n.data = nd
	}
	n.data = n.data[:size]
}

func (n *node) truncate(size int64) {
	if size < int64(len(n.data)) {
		clear(n.data[size:])
		n.data = n.data[:size]
		return
	}
	n.grow(size)
}

// Fdatasync implements FS.
func (m *Mem) Fdatasync(fd int) error { return m.Fsync(fd) }

// Fsync implements FS.
func (m *Mem) Fsync(fd int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, err := m.file(fd)
	if err != nil {
		return err
	}
	m.syncing()
	f.n.sync()
	return nil
}

func (n *node) sync() {
	if n.dir {
		n.syncedNames, n.changes = cloneNames(n.names), nil
		return
	}
	n.synced = append(n.synced[:0], n.data...)
}

// Ftruncate implements FS.
func (m *Mem) Ftruncate(fd int, size int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, err := m.file(fd)
	if err != nil {
		return err
	}
	if f.n.dir {
		return unix.EISDIR
	}
	f.n.truncate(size)
	return nil
}

// Fallocate implements FS: allocating is a no-op (no space limit);
// punching a hole zeroes the range.
func (m *Mem) Fallocate(fd int, mode uint32, off, n int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, err := m.file(fd)
	if err != nil {
		return err
	}
	if mode&unix.FALLOC_FL_PUNCH_HOLE != 0 && off < int64(len(f.n.data)) {
		clear(f.n.data[off:min(off+n, int64(len(f.n.data)))])
	}
	return nil
}

// SeekHole implements FS: a file has no holes but its end.
func (m *Mem) SeekHole(fd int, off int64) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, err := m.file(fd)
	if err != nil {
		return 0, err
	}
	if off >= int64(len(f.n.data)) {
		return 0, unix.ENXIO
	}
	return int64(len(f.n.data)), nil
}

// SeekData implements FS.
func (m *Mem) SeekData(fd int, off int64) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, err := m.file(fd)
	if err != nil {
		return 0, err
	}
	if off >= int64(len(f.n.data)) {
		return 0, unix.ENXIO
	}
	return off, nil
}

// Size implements FS.
func (m *Mem) Size(fd int) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, err := m.file(fd)
	if err != nil {
		return 0, err
	}
	return int64(len(f.n.data)), nil
}

// Lock implements FS.
func (m *Mem) Lock(fd int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, err := m.file(fd)
	if err != nil {
		return err
	}
	if f.n.locked != nil && f.n.locked != f {
		return unix.EWOULDBLOCK
	}
	f.n.locked = f
	return nil
}

// Mmap implements FS: the mapping is the file's own buffer, which must
// not move while mapped (the file may not grow past size meanwhile).
func (m *Mem) Mmap(fd int, size int, writable bool) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, err := m.file(fd)
	if err != nil {
		return nil, err
	}
	n := f.n
	if size <= 0 || n.dir {
		return nil, unix.EINVAL
	}
	if size > cap(n.data) {
		if n.maps > 0 {
			panic("BUG: vfs: a second mapping larger than the file's buffer")
		}
		nd := make([]byte, len(n.data), size)
		copy(nd, n.data)
		n.data = nd
	}
	b := n.data[:size:size]
	n.maps++
	m.maps[unsafe.SliceData(b)] = n
	return b, nil
}

// Munmap implements FS.
func (m *Mem) Munmap(b []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.maps[unsafe.SliceData(b)]
	if !ok {
		return unix.EINVAL
	}
	n.maps--
	if n.maps == 0 {
		delete(m.maps, unsafe.SliceData(b))
	}
	return nil
}

// Msync implements FS.
func (m *Mem) Msync(b []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.maps[unsafe.SliceData(b)]
	if !ok {
		return unix.ENOMEM
	}
	m.syncing()
	n.sync()
	return nil
}

// Rename implements FS.
func (m *Mem) Rename(from, to string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	fp, fname, n, err := m.lookup(from)
	if err == nil && n == nil {
		err = unix.ENOENT
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	tp, tname, old, err := m.lookup(to)
	if err == nil && tp == nil {
		err = unix.EBUSY
	}
	if err == nil && old != nil && old.dir && len(old.names) > 0 {
		err = unix.ENOTEMPTY
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	if fp == tp {
		if fname != tname {
			delete(fp.names, fname)
			fp.names[tname] = n
			m.seq++
			fp.changes = append(fp.changes, nameChange{name: tname, n: n, unlink: fname, seq: m.seq})
		}
		return nil
	}
	seq := m.link(tp, tname, n)
	m.unlink(fp, fname)
	last := &fp.changes[len(fp.changes)-1]
	last.linkDir, last.linkSeq = tp, seq
	return nil
}

// Remove implements FS.
func (m *Mem) Remove(p string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	parent, name, n, err := m.lookup(p)
	switch {
	case err != nil:
	case n == nil:
		err = unix.ENOENT
	case parent == nil:
		err = unix.EBUSY
	case n.dir && len(n.names) > 0:
		err = unix.ENOTEMPTY
	}
	if err != nil {
		return pathErr("remove", p, err)
	}
	m.unlink(parent, name)
	return nil
}

// RemoveAll implements FS: the name goes; what was under it stays with
// the directory node, so a crash that loses the removal brings the tree
// back as it was durable.
func (m *Mem) RemoveAll(p string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	parent, name, n, err := m.lookup(p)
	switch {
	case err == unix.ENOENT || err == nil && n == nil:
		return nil
	case err != nil:
		return pathErr("removeall", p, err)
	case parent == nil:
		return pathErr("removeall", p, unix.EBUSY)
	}
	m.unlink(parent, name)
	return nil
}

// Mkdir implements FS.
func (m *Mem) Mkdir(p string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	parent, name, n, err := m.lookup(p)
	switch {
	case err != nil:
	case n != nil:
		err = unix.EEXIST
	case parent == nil:
		err = unix.EEXIST
	}
	if err != nil {
		return pathErr("mkdir", p, err)
	}
	m.link(parent, name, newDir())
	return nil
}

// MkdirAll implements FS.
func (m *Mem) MkdirAll(p string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.root
	for _, part := range split(p) {
		next, ok := d.names[part]
		switch {
		case !ok:
			next = newDir()
			m.link(d, part, next)
		case !next.dir:
			return pathErr("mkdir", p, unix.ENOTDIR)
		}
		d = next
	}
	return nil
}

// ReadDir implements FS.
func (m *Mem) ReadDir(p string) ([]fs.DirEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, _, n, err := m.lookup(p)
	switch {
	case err != nil:
	case n == nil:
		err = unix.ENOENT
	case !n.dir:
		err = unix.ENOTDIR
	}
	if err != nil {
		return nil, pathErr("readdirent", p, err)
	}
	out := make([]fs.DirEntry, 0, len(n.names))
	for _, name := range sortedNames(n.names) {
		c := n.names[name]
		out = append(out, fs.FileInfoToDirEntry(memInfo{name: name, dir: c.dir, size: int64(len(c.data))}))
	}
	return out, nil
}

// Stat implements FS.
func (m *Mem) Stat(p string) (fs.FileInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, name, n, err := m.lookup(p)
	if err == nil && n == nil {
		err = unix.ENOENT
	}
	if err != nil {
		return nil, pathErr("stat", p, err)
	}
	return memInfo{name: name, dir: n.dir, size: int64(len(n.data))}, nil
}

// ReadFile implements FS.
func (m *Mem) ReadFile(p string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, _, n, err := m.lookup(p)
	switch {
	case err != nil:
	case n == nil:
		err = unix.ENOENT
	case n.dir:
		err = unix.EISDIR
	}
	if err != nil {
		return nil, pathErr("open", p, err)
	}
	return slices.Clone(n.data), nil
}

type memInfo struct {
	name string
	dir  bool
	size int64
}

func (i memInfo) Name() string { return i.name }
func (i memInfo) Size() int64  { return i.size }
func (i memInfo) Mode() fs.FileMode {
	if i.dir {
		return fs.ModeDir | 0o755
	}
	return 0o644
}
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return i.dir }
func (i memInfo) Sys() any           { return nil }

var _ FS = (*Mem)(nil)
