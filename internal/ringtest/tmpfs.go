package ringtest

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// MountTmpfs mounts a tmpfs of size bytes on a fresh directory and returns
// it; it is unmounted when the test ends. The test is skipped, saying why,
// where mounting is not allowed (not root, no CAP_SYS_ADMIN).
func MountTmpfs(t testing.TB, size int64) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	opts := "size=" + strconv.FormatInt(size, 10)
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, opts); err != nil {
		t.Skipf("skipping: cannot mount a %d-byte tmpfs to fill (needs root): %v", size, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// FillDisk writes a file named path until its file system has no space
// left, keeping leave bytes free, and returns how many bytes it wrote.
// Removing the file frees the space again.
func FillDisk(t testing.TB, path string, leave int64) int64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(path), &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail)*st.Bsize - leave
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	var n int64
	for n < free {
		w, err := f.Write(chunk[:min(int64(len(chunk)), free-n)])
		n += int64(w)
		if err != nil {
			break
		}
	}
	return n
}
