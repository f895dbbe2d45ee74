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

// A lost write shows as zeros from a sector boundary; at the end of a file
// the last sector can hold fewer than 8 bytes (long-mode power-cut seed
// 2526: a 204-byte batch whose last 7 bytes, alone in their sector, were
// lost). Zeros of that length not from a sector boundary are data.
func TestLostSectorShortLastSector(t *testing.T) {
	b := bytes.Repeat([]byte{0xab}, 2*SectorSize+7)
	clear(b[2*SectorSize:])
	if !LostSector(b, SectorSize+100) {
		t.Fatal("zeros filling the last, 7-byte sector are not taken for a lost write")
	}
	b[2*SectorSize] = 1 // only 6 zeros left, not from the boundary
	if LostSector(b, SectorSize+100) {
		t.Fatal("6 zero bytes inside a sector taken for a lost write")
	}
	c := bytes.Repeat([]byte{0xab}, 2*SectorSize)
	if LostSector(c, 0) {
		t.Fatal("no zeros, yet a lost write")
	}
}
