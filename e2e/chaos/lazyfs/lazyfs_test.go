package lazyfs

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"

	"golang.org/x/sys/unix"
)

// mounted mounts a new FS on a temporary directory; the mount is
// detached when the test ends, whatever happened.
func mounted(t *testing.T) (*FS, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("lazyfs mounts with mount(2): needs root")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("no /dev/fuse: %v", err)
	}
	dir := t.TempDir()
	f := New()
	if err := f.Mount(dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.LazyUnmount)
	return f, dir
}

// powerCut unmounts, drops what is not durable and mounts again.
func powerCut(t *testing.T, f *FS, dir string) {
	t.Helper()
	if err := f.Unmount(); err != nil {
		t.Fatal(err)
	}
	if err := f.Drop(); err != nil {
		t.Fatal(err)
	}
	if err := f.Mount(dir); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path string, data []byte, sync func(fd int) error) {
	t.Helper()
	fd, err := unix.Open(path, unix.O_CREAT|unix.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if _, err := unix.Pwrite(fd, data, 0); err != nil {
		t.Fatal(err)
	}
	if sync != nil {
		if err := sync(fd); err != nil {
			t.Fatal(err)
		}
	}
}

func syncDir(t *testing.T, dir string) {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Fsync(fd); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) ([]byte, bool) {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return b, true
}

// A file's data written without a sync is gone after a power cut; the
// name survives (its directory was fsynced) with the size of its last
// sync.
func TestUnsyncedWriteIsLost(t *testing.T) {
	f, dir := mounted(t)
	path := filepath.Join(dir, "a")
	writeFile(t, path, []byte("durable"), unix.Fdatasync)
	syncDir(t, dir)
	writeFile(t, path, bytes.Repeat([]byte("x"), 10000), nil)
	if got, _ := readFile(t, path); len(got) != 10000 {
		t.Fatalf("before the cut: %d bytes, want 10000", len(got))
	}
	if f.Unsynced() == 0 {
		t.Fatal("Unsynced() = 0 after an unsynced write")
	}
	powerCut(t, f, dir)
	if got, ok := readFile(t, path); !ok || string(got) != "durable" {
		t.Fatalf("after the cut: %q (exists %v), want %q", got, ok, "durable")
	}
	// A file whose name was never made durable is gone altogether.
	writeFile(t, filepath.Join(dir, "b"), []byte("b"), unix.Fsync)
	powerCut(t, f, dir)
	if got, ok := readFile(t, filepath.Join(dir, "b")); ok {
		t.Fatalf("b after the cut: %q; its directory was never fsynced", got)
	}
}

// fdatasync (and fsync, and msync of a shared mapping) keep the data.
func TestSyncedWriteIsKept(t *testing.T) {
	f, dir := mounted(t)
	big := bytes.Repeat([]byte("0123456789abcdef"), 1000) // crosses pages
	writeFile(t, filepath.Join(dir, "datasync"), big, unix.Fdatasync)
	writeFile(t, filepath.Join(dir, "fsync"), []byte("fsync"), unix.Fsync)

	path := filepath.Join(dir, "mapped")
	writeFile(t, path, make([]byte, 8192), unix.Fsync)
	// This process serves the file system: a page fault on the mapping
	// waits for a server goroutine, and a garbage collection starting
	// meanwhile would wait for the faulting thread (a fault is not a
	// system call) while stopping the server: no collection here.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	fd, err := unix.Open(path, unix.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	m, err := unix.Mmap(fd, 0, 8192, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	copy(m[4096:], "through the mapping")
	if err := unix.Msync(m, unix.MS_SYNC); err != nil {
		t.Fatal(err)
	}
	unix.Munmap(m)
	unix.Close(fd)
	syncDir(t, dir)

	powerCut(t, f, dir)
	if got, _ := readFile(t, filepath.Join(dir, "datasync")); !bytes.Equal(got, big) {
		t.Fatalf("datasync: %d bytes after the cut, want %d equal ones", len(got), len(big))
	}
	if got, _ := readFile(t, filepath.Join(dir, "fsync")); string(got) != "fsync" {
		t.Fatalf("fsync: %q after the cut", got)
	}
	got, _ := readFile(t, path)
	if len(got) != 8192 || string(got[4096:4096+19]) != "through the mapping" {
		t.Fatalf("mapped: %d bytes, %q at 4096", len(got), got[4096:min(len(got), 4096+19)])
	}
}

// A rename is durable only once its directory was fsynced: without it the
// old name is back after a power cut (with the old target's contents).
func TestRenameWithoutDirSync(t *testing.T) {
	f, dir := mounted(t)
	from, to := filepath.Join(dir, "tmp"), filepath.Join(dir, "final")
	writeFile(t, to, []byte("old"), unix.Fsync)
	writeFile(t, from, []byte("new"), unix.Fsync)
	syncDir(t, dir)
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
	powerCut(t, f, dir)
	if got, _ := readFile(t, to); string(got) != "old" {
		t.Fatalf("final after the cut: %q, want the old contents", got)
	}
	if got, ok := readFile(t, from); !ok || string(got) != "new" {
		t.Fatalf("tmp after the cut: %q (exists %v), want it back", got, ok)
	}
	// With the directory fsynced the rename stays.
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
	syncDir(t, dir)
	powerCut(t, f, dir)
	if got, _ := readFile(t, to); string(got) != "new" {
		t.Fatalf("final after a synced rename and a cut: %q", got)
	}
	if _, ok := readFile(t, from); ok {
		t.Fatal("tmp is back after a synced rename")
	}
}

// Truncation, hole punching and preallocation read as the kernel's file
// systems do, and a shrink made durable stays.
func TestTruncateAndAllocate(t *testing.T) {
	f, dir := mounted(t)
	path := filepath.Join(dir, "t")
	writeFile(t, path, bytes.Repeat([]byte{'a'}, 10000), unix.Fsync)
	syncDir(t, dir)
	fd, err := unix.Open(path, unix.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 100, 5000); err != nil {
		t.Fatal(err)
	}
	if err := unix.Ftruncate(fd, 9000); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fallocate(fd, 0, 0, 12000); err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	want := bytes.Repeat([]byte{'a'}, 12000)
	clear(want[100:5100])
	clear(want[9000:])
	if got, _ := readFile(t, path); !bytes.Equal(got, want) {
		t.Fatalf("after punch, truncate, allocate: %d bytes, differ from the model", len(got))
	}
	powerCut(t, f, dir)
	if got, _ := readFile(t, path); !bytes.Equal(got, bytes.Repeat([]byte{'a'}, 10000)) {
		t.Fatalf("after the cut: %d bytes, want the 10000 synced ones", len(got))
	}
}

// ReadFile and ReadDir see the current state without the mount.
func TestReadWithoutMount(t *testing.T) {
	f, dir := mounted(t)
	if err := os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "a", "b", "f"), []byte("hello"), nil)
	writeFile(t, filepath.Join(dir, "a", "g"), []byte("x"), nil)
	if err := f.Unmount(); err != nil {
		t.Fatal(err)
	}
	if got, err := f.ReadFile("a/b/f"); err != nil || string(got) != "hello" {
		t.Fatalf("ReadFile: %q %v", got, err)
	}
	if got, err := f.ReadDir("a"); err != nil || len(got) != 2 || got[0] != "b" || got[1] != "g" {
		t.Fatalf("ReadDir: %q %v", got, err)
	}
	if _, err := f.ReadFile("a/nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadFile of a missing file: %v", err)
	}
}
