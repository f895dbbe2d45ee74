// Package lazyfs is a FUSE file system for power-loss tests (like
// Jepsen's LazyFS): it holds every file in memory and keeps, besides the
// current contents the mounted file system shows, what a power cut would
// leave: each file's data as of its last fsync/fdatasync and each
// directory's names as of its last fsync. Drop throws away everything
// else, as a power cut at that moment would.
//
// Pages are 4 KiB and copied on the first write after a sync, so a sync
// costs the pages written since the last one, not the file's size; a
// sparse or preallocated file costs only the pages written. Not modelled:
// torn or reordered unsynced writes (Drop keeps none of them), hard links,
// symbolic links, extended attributes, space limits.
//
// An FS outlives its mounts: Mount serves it at a directory, Unmount ends
// that, and a later Mount serves the same files (with fresh kernel caches,
// which is what Drop needs: the kernel must not keep pages of data that no
// longer exists).
package lazyfs

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

const pageSize = 4096

type page = [pageSize]byte

// FS is one broker's file system. The zero value is not usable; New.
type FS struct {
	mu      sync.Mutex
	root    *node
	nextIno uint64
	drops   int

	server *fuse.Server // the current mount, nil when unmounted
	dir    string
}

// node is a file or a directory.
type node struct {
	ino   uint64
	dir   bool
	mode  uint32 // permission bits
	mtime time.Time

	// Files: the current pages (absent: zeros) and size, and the durable
	// ones. cur[i] and dur[i] are the same page until a write after a
	// sync copies it; dirty names the pages that differ.
	size, durSize int64
	cur, dur      map[int64]*page
	dirty         map[int64]bool

	// Directories: the current names and those as of the last fsync.
	names, durNames map[string]*node
}

// New returns an FS holding an empty root directory.
func New() *FS {
	f := &FS{nextIno: 2}
	f.root = &node{ino: 1, dir: true, mode: 0o755, mtime: time.Now(),
		names: map[string]*node{}, durNames: map[string]*node{}}
	return f
}

func (f *FS) newNode(dir bool, mode uint32) *node {
	n := &node{ino: f.nextIno, dir: dir, mode: mode & 0o7777, mtime: time.Now()}
	f.nextIno++
	if dir {
		n.names, n.durNames = map[string]*node{}, map[string]*node{}
	} else {
		n.cur, n.dur, n.dirty = map[int64]*page{}, map[int64]*page{}, map[int64]bool{}
	}
	return n
}

// Mount serves f at dir (an existing, empty directory) until Unmount. It
// mounts with mount(2) directly (root; no fusermount).
func (f *FS) Mount(dir string) error {
	f.mu.Lock()
	if f.server != nil {
		f.mu.Unlock()
		return fmt.Errorf("lazyfs: already mounted at %s", f.dir)
	}
	f.mu.Unlock()
	zero := time.Duration(0)
	root := &fnode{f: f, n: f.root}
	srv, err := fs.Mount(dir, root, &fs.Options{
		MountOptions: fuse.MountOptions{
			FsName:      "lazyfs",
			Name:        "lazyfs",
			DirectMount: true,
			MaxWrite:    1 << 20,
		},
		// The kernel may cache names and attributes: every change goes
		// through it. Negative entries are not cached.
		NegativeTimeout: &zero,
		RootStableAttr:  &fs.StableAttr{Ino: 1},
	})
	if err != nil {
		return fmt.Errorf("lazyfs: mount %s: %w", dir, err)
	}
	f.mu.Lock()
	f.server, f.dir = srv, dir
	f.mu.Unlock()
	return nil
}

// Unmount ends the current mount (none: nothing to do). Unsynced data
// stays (unless dropped): a process crash does not lose the page cache.
// It fails when a file of the mount is still open; LazyUnmount does not.
func (f *FS) Unmount() error {
	f.mu.Lock()
	srv, dir := f.server, f.dir
	f.mu.Unlock()
	if srv == nil {
		return nil
	}
	if err := unmount(dir, 0); err != nil {
		return err
	}
	srv.Wait()
	f.mu.Lock()
	f.server = nil
	f.mu.Unlock()
	return nil
}

// LazyUnmount detaches the mount even while files are open (MNT_DETACH)
// and does not wait for the server: for cleanups after a failure.
func (f *FS) LazyUnmount() {
	f.mu.Lock()
	srv, dir := f.server, f.dir
	f.server = nil
	f.mu.Unlock()
	if srv != nil {
		_ = unmount(dir, unix.MNT_DETACH)
	}
}

// unmount retries EBUSY for a while: the kernel may still hold the files
// of a process that was just killed.
func unmount(dir string, flags int) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := unix.Unmount(dir, flags)
		if err == nil || !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("lazyfs: unmount %s: %w", dir, err)
			}
			return nil
		}
		time.Sleep(20 * time.Millisecond) // polling interval, bounded by the deadline
	}
}

// Drop loses everything not durable, as a power cut would: each file's
// data since its last sync, each directory's names since its last fsync
// (so files and directories never made durable vanish). It must not be
// mounted (the kernel would keep pages of what is gone).
func (f *FS) Drop() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.server != nil {
		return fmt.Errorf("lazyfs: Drop while mounted at %s", f.dir)
	}
	f.drops++
	seen := map[*node]bool{}
	var walk func(n *node)
	walk = func(n *node) {
		if seen[n] {
			return
		}
		seen[n] = true
		if !n.dir {
			n.cur = make(map[int64]*page, len(n.dur))
			for i, p := range n.dur {
				n.cur[i] = p
			}
			n.size = n.durSize
			n.dirty = map[int64]bool{}
			return
		}
		n.names = make(map[string]*node, len(n.durNames))
		for name, c := range n.durNames {
			n.names[name] = c
			walk(c)
		}
	}
	walk(f.root)
	return nil
}

// Drops counts Drop calls.
func (f *FS) Drops() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.drops
}

// Unsynced reports how many bytes of file pages are not durable (for
// logs).
func (f *FS) Unsynced() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var total int64
	seen := map[*node]bool{}
	var walk func(n *node)
	walk = func(n *node) {
		if seen[n] {
			return
		}
		seen[n] = true
		if !n.dir {
			total += int64(len(n.dirty)) * pageSize
			return
		}
		for _, c := range n.names {
			walk(c)
		}
	}
	walk(f.root)
	return total
}

// File operations on nodes (f.mu held).

func (n *node) read(dest []byte, off int64) int {
	if off >= n.size {
		return 0
	}
	end := min(off+int64(len(dest)), n.size)
	k := 0
	for pos := off; pos < end; {
		i, o := pos/pageSize, pos%pageSize
		m := min(int64(pageSize)-o, end-pos)
		if p := n.cur[i]; p != nil {
			copy(dest[k:k+int(m)], p[o:o+m])
		} else {
			clear(dest[k : k+int(m)])
		}
		k += int(m)
		pos += m
	}
	return k
}

// writable returns page i ready to be changed (copied when shared with
// the durable pages).
func (n *node) writable(i int64) *page {
	p := n.cur[i]
	if n.dirty[i] && p != nil {
		return p
	}
	np := new(page)
	if p != nil {
		*np = *p
	}
	n.cur[i] = np
	n.dirty[i] = true
	return np
}

func (n *node) write(data []byte, off int64) {
	for k := 0; k < len(data); {
		pos := off + int64(k)
		i, o := pos/pageSize, pos%pageSize
		m := copy(n.writable(i)[o:], data[k:])
		k += m
	}
	n.size = max(n.size, off+int64(len(data)))
	n.mtime = time.Now()
}

// zero makes [off, end) read as zeros (within the current size or not).
func (n *node) zero(off, end int64) {
	for pos := off; pos < end; {
		i, o := pos/pageSize, pos%pageSize
		m := min(int64(pageSize)-o, end-pos)
		if o == 0 && m == pageSize {
			if n.cur[i] != nil {
				delete(n.cur, i)
				n.dirty[i] = true
			}
		} else if n.cur[i] != nil {
			clear(n.writable(i)[o : o+m])
		}
		pos += m
	}
}

func (n *node) truncate(size int64) {
	if size < n.size {
		// Bytes past the new end must read as zeros if it grows again.
		last := (n.size + pageSize - 1) / pageSize
		n.zero(size, last*pageSize)
	}
	n.size = size
	n.mtime = time.Now()
}

func (n *node) sync() {
	for i := range n.dirty {
		if p := n.cur[i]; p != nil {
			n.dur[i] = p
		} else {
			delete(n.dur, i)
		}
	}
	n.dirty = map[int64]bool{}
	n.durSize = n.size
}

func (n *node) syncDir() {
	n.durNames = make(map[string]*node, len(n.names))
	for name, c := range n.names {
		n.durNames[name] = c
	}
}

func (n *node) attr(out *fuse.Attr) {
	out.Ino = n.ino
	out.Mtime = uint64(n.mtime.Unix())
	out.Mtimensec = uint32(n.mtime.Nanosecond())
	out.Ctime, out.Ctimensec = out.Mtime, out.Mtimensec
	out.Atime, out.Atimensec = out.Mtime, out.Mtimensec
	out.Blksize = pageSize
	if n.dir {
		out.Mode = syscall.S_IFDIR | n.mode
		out.Nlink = 2
		return
	}
	out.Mode = syscall.S_IFREG | n.mode
	out.Nlink = 1
	out.Size = uint64(n.size)
	out.Blocks = uint64(len(n.cur)) * pageSize / 512
}

// fnode is a node as one mount serves it.
type fnode struct {
	fs.Inode
	f *FS
	n *node
}

var (
	_ fs.NodeLookuper  = (*fnode)(nil)
	_ fs.NodeReaddirer = (*fnode)(nil)
	_ fs.NodeGetattrer = (*fnode)(nil)
	_ fs.NodeSetattrer = (*fnode)(nil)
	_ fs.NodeOpener    = (*fnode)(nil)
	_ fs.NodeReader    = (*fnode)(nil)
	_ fs.NodeWriter    = (*fnode)(nil)
	_ fs.NodeFsyncer   = (*fnode)(nil)
	_ fs.NodeAllocater = (*fnode)(nil)
	_ fs.NodeCreater   = (*fnode)(nil)
	_ fs.NodeMkdirer   = (*fnode)(nil)
	_ fs.NodeUnlinker  = (*fnode)(nil)
	_ fs.NodeRmdirer   = (*fnode)(nil)
	_ fs.NodeRenamer   = (*fnode)(nil)
	_ fs.NodeStatfser  = (*fnode)(nil)
)

func (fn *fnode) child(ctx context.Context, c *node, out *fuse.EntryOut) *fs.Inode {
	c.attr(&out.Attr)
	mode := uint32(syscall.S_IFREG)
	if c.dir {
		mode = syscall.S_IFDIR
	}
	return fn.NewInode(ctx, &fnode{f: fn.f, n: c}, fs.StableAttr{Mode: mode, Ino: c.ino})
}

func (fn *fnode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	fn.f.mu.Lock()
	defer fn.f.mu.Unlock()
	if !fn.n.dir {
		return nil, syscall.ENOTDIR
	}
	c := fn.n.names[name]
	if c == nil {
		return nil, syscall.ENOENT
	}
	return fn.child(ctx, c, out), 0
}

func (fn *fnode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	fn.f.mu.Lock()
	defer fn.f.mu.Unlock()
	entries := make([]fuse.DirEntry, 0, len(fn.n.names))
	for name, c := range fn.n.names {
		mode := uint32(syscall.S_IFREG)
		if c.dir {
			mode = syscall.S_IFDIR
		}
		entries = append(entries, fuse.DirEntry{Name: name, Ino: c.ino, Mode: mode})
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name < entries[j].Name })
	return fs.NewListDirStream(entries), 0
}

func (fn *fnode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	fn.f.mu.Lock()
	defer fn.f.mu.Unlock()
	fn.n.attr(&out.Attr)
	return 0
}

func (fn *fnode) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	fn.f.mu.Lock()
	defer fn.f.mu.Unlock()
	if sz, ok := in.GetSize(); ok {
		if fn.n.dir {
			return syscall.EISDIR
		}
		fn.n.truncate(int64(sz))
	}
	if m, ok := in.GetMode(); ok {
		fn.n.mode = m & 0o7777
	}
	if mt, ok := in.GetMTime(); ok {
		fn.n.mtime = mt
	}
	fn.n.attr(&out.Attr)
	return 0
}

func (fn *fnode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_TRUNC != 0 {
		fn.f.mu.Lock()
		fn.n.truncate(0)
		fn.f.mu.Unlock()
	}
	return nil, 0, 0
}

func (fn *fnode) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	fn.f.mu.Lock()
	defer fn.f.mu.Unlock()
	k := fn.n.read(dest, off)
	return fuse.ReadResultData(dest[:k]), 0
}

func (fn *fnode) Write(ctx context.Context, fh fs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	fn.f.mu.Lock()
	defer fn.f.mu.Unlock()
	fn.n.write(data, off)
	return uint32(len(data)), 0
}

// Fsync makes a file's data and size durable, or a directory's names
// (fsync and fdatasync alike).
func (fn *fnode) Fsync(ctx context.Context, fh fs.FileHandle, flags uint32) syscall.Errno {
	fn.f.mu.Lock()
	defer fn.f.mu.Unlock()
	if fn.n.dir {
		fn.n.syncDir()
	} else {
		fn.n.sync()
	}
	return 0
}

func (fn *fnode) Allocate(ctx context.Context, fh fs.FileHandle, off, size uint64, mode uint32) syscall.Errno {
	fn.f.mu.Lock()
	defer fn.f.mu.Unlock()
	end := int64(off + size)
	switch {
	case mode&unix.FALLOC_FL_PUNCH_HOLE != 0:
		fn.n.zero(int64(off), min(end, fn.n.size))
	case mode&unix.FALLOC_FL_ZERO_RANGE != 0:
		fn.n.zero(int64(off), min(end, fn.n.size))
		if mode&unix.FALLOC_FL_KEEP_SIZE == 0 {
			fn.n.size = max(fn.n.size, end)
		}
	case mode&^uint32(unix.FALLOC_FL_KEEP_SIZE) != 0:
		return syscall.EOPNOTSUPP
	case mode&unix.FALLOC_FL_KEEP_SIZE == 0:
		fn.n.size = max(fn.n.size, end)
	}
	return 0
}

func (fn *fnode) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	fn.f.mu.Lock()
	defer fn.f.mu.Unlock()
	if c := fn.n.names[name]; c != nil {
		if flags&syscall.O_EXCL != 0 {
			return nil, nil, 0, syscall.EEXIST
		}
		if c.dir {
			return nil, nil, 0, syscall.EISDIR
		}
		if flags&syscall.O_TRUNC != 0 {
			c.truncate(0)
		}
		return fn.child(ctx, c, out), nil, 0, 0
	}
	c := fn.f.newNode(false, mode)
	fn.n.names[name] = c
	fn.n.mtime = time.Now()
	return fn.child(ctx, c, out), nil, 0, 0
}

func (fn *fnode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	fn.f.mu.Lock()
	defer fn.f.mu.Unlock()
	if fn.n.names[name] != nil {
		return nil, syscall.EEXIST
	}
	c := fn.f.newNode(true, mode)
	fn.n.names[name] = c
	fn.n.mtime = time.Now()
	return fn.child(ctx, c, out), 0
}

func (fn *fnode) Unlink(ctx context.Context, name string) syscall.Errno {
	fn.f.mu.Lock()
	defer fn.f.mu.Unlock()
	c := fn.n.names[name]
	switch {
	case c == nil:
		return syscall.ENOENT
	case c.dir:
		return syscall.EISDIR
	}
	delete(fn.n.names, name)
	fn.n.mtime = time.Now()
	return 0
}

func (fn *fnode) Rmdir(ctx context.Context, name string) syscall.Errno {
	fn.f.mu.Lock()
	defer fn.f.mu.Unlock()
	c := fn.n.names[name]
	switch {
	case c == nil:
		return syscall.ENOENT
	case !c.dir:
		return syscall.ENOTDIR
	case len(c.names) > 0:
		return syscall.ENOTEMPTY
	}
	delete(fn.n.names, name)
	fn.n.mtime = time.Now()
	return 0
}

// Rename moves a name; the move is durable once the directories involved
// were fsynced (each side on its own, as a power cut may keep either).
func (fn *fnode) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	fn.f.mu.Lock()
	defer fn.f.mu.Unlock()
	to, ok := newParent.(*fnode)
	if !ok {
		return syscall.EXDEV
	}
	c := fn.n.names[name]
	if c == nil {
		return syscall.ENOENT
	}
	old := to.n.names[newName]
	switch {
	case flags&unix.RENAME_EXCHANGE != 0:
		return syscall.EINVAL
	case old != nil && flags&unix.RENAME_NOREPLACE != 0:
		return syscall.EEXIST
	case old != nil && old.dir && !c.dir:
		return syscall.EISDIR
	case old != nil && !old.dir && c.dir:
		return syscall.ENOTDIR
	case old != nil && old.dir && len(old.names) > 0:
		return syscall.ENOTEMPTY
	}
	delete(fn.n.names, name)
	to.n.names[newName] = c
	fn.n.mtime, to.n.mtime = time.Now(), time.Now()
	return 0
}

func (fn *fnode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	// Plenty of space: the file system is memory.
	out.Bsize, out.Frsize = pageSize, pageSize
	out.Blocks, out.Bfree, out.Bavail = 1<<24, 1<<23, 1<<23
	out.Files, out.Ffree = 1<<20, 1<<19
	out.NameLen = 255
	return 0
}

// lookup finds path (relative to the root, slash-separated) in the
// current names (f.mu held).
func (f *FS) lookup(path string) *node {
	n := f.root
	for _, part := range strings.Split(strings.Trim(path, "/"), "/") {
		if part == "" {
			continue
		}
		if !n.dir {
			return nil
		}
		if n = n.names[part]; n == nil {
			return nil
		}
	}
	return n
}

// ReadFile returns a file's current contents straight from memory, with
// no mount involved: for a checker reading a stopped broker's data (a
// process that serves the file system must not read it through the
// kernel with a mapping, see the package tests).
func (f *FS) ReadFile(path string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.lookup(path)
	switch {
	case n == nil:
		return nil, fmt.Errorf("lazyfs: %s: %w", path, iofs.ErrNotExist)
	case n.dir:
		return nil, fmt.Errorf("lazyfs: %s is a directory", path)
	}
	b := make([]byte, n.size)
	n.read(b, 0)
	return b, nil
}

// ReadDir returns the current names of a directory, sorted.
func (f *FS) ReadDir(path string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.lookup(path)
	switch {
	case n == nil:
		return nil, fmt.Errorf("lazyfs: %s: %w", path, iofs.ErrNotExist)
	case !n.dir:
		return nil, fmt.Errorf("lazyfs: %s is not a directory", path)
	}
	names := make([]string, 0, len(n.names))
	for name := range n.names {
		names = append(names, name)
	}
	sort.Strings(names)
	return names, nil
}
