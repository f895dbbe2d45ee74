package vfs

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"golang.org/x/sys/unix"
)

func mustOpen(t *testing.T, m *Mem, p string, flags int) int {
	t.Helper()
	fd, err := m.Open(p, flags)
	if err != nil {
		t.Fatal(err)
	}
	return fd
}

func TestMemCrashKeepsOnlyDurable(t *testing.T) {
	m := NewMem()
	if err := m.MkdirAll("/d"); err != nil {
		t.Fatal(err)
	}
	if err := SyncDir(m, "/"); err != nil {
		t.Fatal(err)
	}
	fd := mustOpen(t, m, "/d/a", unix.O_RDWR|unix.O_CREAT)
	m.Pwrite(fd, []byte("synced"), 0)
	m.Fdatasync(fd)
	if err := SyncDir(m, "/d"); err != nil {
		t.Fatal(err)
	}
	m.Pwrite(fd, []byte("-lost"), 6)
	fd2 := mustOpen(t, m, "/d/b", unix.O_RDWR|unix.O_CREAT) // name never synced
	m.Pwrite(fd2, []byte("b"), 0)
	m.Fdatasync(fd2)
	if err := m.Rename("/d/a", "/d/c"); err != nil { // rename never synced
		t.Fatal(err)
	}

	c := m.Crash(nil)
	if b, err := c.ReadFile("/d/a"); err != nil || string(b) != "synced" {
		t.Fatalf("/d/a after the crash: %q, %v; want the synced contents", b, err)
	}
	for _, p := range []string{"/d/b", "/d/c"} {
		if _, err := c.Stat(p); err == nil {
			t.Fatalf("%s survived a crash without a directory fsync", p)
		}
	}
	// The original goes on unchanged.
	if b, _ := m.ReadFile("/d/c"); string(b) != "synced-lost" {
		t.Fatalf("original /d/c: %q", b)
	}
}

func TestMemCrashTearsUnsyncedWrites(t *testing.T) {
	seen := map[string]bool{}
	data := bytes.Repeat([]byte{7}, 4*CrashSector)
	for seed := range uint64(64) {
		m := NewMem()
		fd := mustOpen(t, m, "/f", unix.O_RDWR|unix.O_CREAT)
		SyncDir(m, "/")
		m.Pwrite(fd, data, 0)
		b, err := m.Crash(rand.New(rand.NewPCG(seed, 1))).ReadFile("/f")
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case len(b) == 0:
			seen["lost"] = true
		case bytes.Equal(b, data):
			seen["kept"] = true
		default:
			seen["torn"] = true
		}
	}
	if len(seen) != 3 {
		t.Fatalf("64 crashes of an unsynced write gave only %v; want lost, kept and torn", seen)
	}
}

func TestMemMappingSharesFileBytes(t *testing.T) {
	m := NewMem()
	fd := mustOpen(t, m, "/f", unix.O_RDWR|unix.O_CREAT)
	m.Ftruncate(fd, 64)
	b, err := m.Mmap(fd, 64, true)
	if err != nil {
		t.Fatal(err)
	}
	m.Pwrite(fd, []byte("x"), 0)
	b[1] = 'y'
	var got [2]byte
	m.Pread(fd, got[:], 0)
	if b[0] != 'x' || string(got[:]) != "xy" {
		t.Fatalf("mapping %q, file %q; want both \"xy\"", b[:2], got)
	}
	if err := m.Msync(b); err != nil {
		t.Fatal(err)
	}
	if err := m.Munmap(b); err != nil {
		t.Fatal(err)
	}
}
