package ring

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

func tempFile(t *testing.T) int {
	t.Helper()
	fd, err := unix.Open(filepath.Join(t.TempDir(), "f"), unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Close(fd) })
	return fd
}

// TestWriteReadAtOffset: a ring write lands at its offset (checked with
// pread and the file size), and a ring read at an offset returns it.
func TestWriteReadAtOffset(t *testing.T) {
	defer runtime.UnlockOSThread()
	r := newTestRing(t, 8)
	fd := tempFile(t)
	data := pattern(1000, 9)
	r.PrepareWrite(fd, data, 4096, 1)
	if c := collectOne(t, r, 1); c.res != int32(len(data)) {
		t.Fatalf("write res %d", c.res)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Size != 4096+1000 {
		t.Fatalf("size %d err %v, want 5096", st.Size, err)
	}
	check := make([]byte, len(data))
	if n, err := unix.Pread(fd, check, 4096); n != len(data) || err != nil || !bytes.Equal(check, data) {
		t.Fatalf("pread %d %v equal %v", n, err, bytes.Equal(check, data))
	}
	got := make([]byte, 300)
	r.PrepareRead(fd, got, 4096+500, 2)
	if c := collectOne(t, r, 2); c.res != 300 || !bytes.Equal(got, data[500:800]) {
		t.Fatalf("read res %d, equal %v", c.res, bytes.Equal(got, data[500:800]))
	}
}

// TestWritevFileAtOffset: writev gathers its iovecs at the file offset.
func TestWritevFileAtOffset(t *testing.T) {
	defer runtime.UnlockOSThread()
	r := newTestRing(t, 8)
	fd := tempFile(t)
	m := NewMsg(3)
	m.Add([]byte("alpha,"))
	m.Add([]byte("beta,"))
	m.Add([]byte("gamma"))
	r.PrepareWritev(fd, m.Iovecs(), 100, 1)
	if c := collectOne(t, r, 1); c.res != 16 {
		t.Fatalf("writev res %d", c.res)
	}
	got := make([]byte, 16)
	if _, err := unix.Pread(fd, got, 100); err != nil || string(got) != "alpha,beta,gamma" {
		t.Fatalf("pread %q %v", got, err)
	}
}

// TestFsync: fsync and fdatasync of a written file succeed; on a pipe,
// which cannot be synced, they fail with EINVAL, which shows the fd is the
// one given. (The datasync bit itself is checked in the SQE table test: its
// effect is invisible without cutting power.)
func TestFsync(t *testing.T) {
	defer runtime.UnlockOSThread()
	r := newTestRing(t, 8)
	fd := tempFile(t)
	r.PrepareWrite(fd, []byte("durable"), 0, 1)
	r.PrepareFsync(fd, false, 2)
	r.PrepareFsync(fd, true, 3)
	for _, c := range collect(t, r, 3) {
		if c.res < 0 {
			t.Fatalf("completion %+v", c)
		}
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	for i, datasync := range []bool{false, true} {
		r.PrepareFsync(p[1], datasync, uint64(10+i))
		if c := collectOne(t, r, uint64(10+i)); c.res != -int32(unix.EINVAL) {
			t.Fatalf("fsync(pipe, datasync=%v) res %d, want -EINVAL", datasync, c.res)
		}
	}
	if b, err := os.ReadFile("/proc/self/fd/" + itoa(fd)); err != nil || string(b) != "durable" {
		t.Fatalf("file content %q %v", b, err)
	}
}

func itoa(i int) string {
	var b [20]byte
	n := len(b)
	for {
		n--
		b[n] = byte('0' + i%10)
		if i /= 10; i == 0 {
			return string(b[n:])
		}
	}
}

// TestSyncFileRange: sync_file_range of a written range succeeds; on a
// pipe it fails with ESPIPE (the fd is the one given), and an unknown flag
// fails with EINVAL (the flags reach the kernel).
func TestSyncFileRange(t *testing.T) {
	defer runtime.UnlockOSThread()
	r := newTestRing(t, 8)
	fd := tempFile(t)
	r.PrepareWrite(fd, pattern(64<<10, 3), 0, 1)
	if c := collectOne(t, r, 1); c.res != 64<<10 {
		t.Fatalf("write res %d", c.res)
	}
	r.PrepareSyncFileRange(fd, 0, 64<<10, unix.SYNC_FILE_RANGE_WRITE, 2)
	if c := collectOne(t, r, 2); c.res != 0 {
		t.Fatalf("sync_file_range res %d, want 0", c.res)
	}
	r.PrepareSyncFileRange(fd, 0, 64<<10, 0x80, 3)
	if c := collectOne(t, r, 3); c.res != -int32(unix.EINVAL) {
		t.Fatalf("sync_file_range with an unknown flag: res %d, want -EINVAL", c.res)
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	r.PrepareSyncFileRange(p[1], 0, 4096, unix.SYNC_FILE_RANGE_WRITE, 4)
	if c := collectOne(t, r, 4); c.res != -int32(unix.ESPIPE) {
		t.Fatalf("sync_file_range of a pipe: res %d, want -ESPIPE", c.res)
	}
}
