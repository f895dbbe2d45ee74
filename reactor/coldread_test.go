package reactor

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"github.com/ringmq/ringmq/client"
	"github.com/ringmq/ringmq/internal/ringtest"
	"github.com/ringmq/ringmq/proto"
	"golang.org/x/sys/unix"
)

// dropFromPageCache writes back and evicts every segment file of dir from
// the page cache, and returns how many files it found and how many pages of
// them are still resident (a tmpfs data directory cannot be evicted).
func dropFromPageCache(t *testing.T, dir string) (files, resident int) {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			t.Fatal(err)
		}
		if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
			t.Fatal(err)
		}
		resident += residentPages(t, f)
		f.Close()
	}
	return len(names), resident
}

// residentPages counts the pages of f in the page cache (mincore of a
// fresh, untouched mapping).
func residentPages(t *testing.T, f *os.File) int {
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return 0
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	vec := make([]byte, (len(m)+os.Getpagesize()-1)/os.Getpagesize())
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)),
		uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

func TestColdReadsGoThroughTheRing(t *testing.T) {
	dataDir := t.TempDir()
	srv := startServer(t, testConfig(t, dataDir))
	c := ringtest.Dial(t, srv.Addr(), client.Options{})
	ringtest.CreateTopic(t, c, "cold", 1)
	produceRecords(t, c, "cold", 1, 0, 20_000, 500, 1)
	files, resident := dropFromPageCache(t, filepath.Join(dataDir, "topics", "cold", "0"))
	if files == 0 {
		t.Fatal("no segment files found")
	}
	if resident > 0 {
		t.Skipf("%d pages still in page cache after FADV_DONTNEED (tmpfs?): cannot make data cold here", resident)
	}
	before := metricValue(t, "ringmq_fetch_cold_read_bytes_total")
	checkExactlyOnce(t, readAll(t, c, "cold", 1), 1, 20_000)
	if after := metricValue(t, "ringmq_fetch_cold_read_bytes_total"); after <= before {
		t.Fatalf("cold read bytes %v → %v: evicted data was not read through the ring", before, after)
	}
}

// A cold read starts at an index entry, which may be before the batch
// holding the offset (sparse), or wrong; only batches from the one holding
// the offset are kept, and a read that does not hold it keeps nothing (the
// part is then read with Log.Read, which checks the index).
func TestColdReadKeepsBatchesFromTheOffset(t *testing.T) {
	var all []byte
	var starts []int
	for base := uint64(0); base < 12; base += 3 { // batches 0-2, 3-5, 6-8, 9-11
		var b proto.BatchBuilder
		b.Reset(nil)
		for i := 0; i < 3; i++ {
			b.Append(1, nil, []byte{byte(base)}, nil)
		}
		batch := b.Finish()
		proto.SetBaseOffset(batch, base) // base_offset is outside the CRC
		starts = append(starts, len(all))
		all = append(all, batch...)
	}
	for _, tc := range []struct {
		name     string
		from, to int // the range read
		off      uint64
		wantBase int64 // base offset of the first batch kept, -1: none
		wantLen  int
	}{
		{"at the batch", starts[1], len(all), 4, 3, len(all) - starts[1]},
		{"earlier batches skipped", 0, len(all), 7, 6, len(all) - starts[2]},
		{"cut inside a later batch", 0, starts[3] + 5, 4, 3, starts[3] - starts[1]},
		{"ends before the offset", 0, starts[2], 7, -1, 0},
		{"starts past the offset", starts[2], len(all), 4, -1, 0},
		{"starts mid batch", starts[1] + 9, len(all), 4, -1, 0},
	} {
		b := bytes.Clone(all[tc.from:tc.to])
		n := batchesFrom(b, tc.off)
		if n != tc.wantLen {
			t.Fatalf("%s: kept %d bytes, want %d", tc.name, n, tc.wantLen)
		}
		if n > 0 {
			if h, err := proto.ParseBatchHeader(b); err != nil || int64(h.BaseOffset) != tc.wantBase {
				t.Fatalf("%s: first batch kept %d (%v), want %d", tc.name, h.BaseOffset, err, tc.wantBase)
			}
		}
	}
}
