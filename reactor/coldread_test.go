package reactor

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ringmq/ringmq/client"
	"golang.org/x/sys/unix"
)

// dropFromPageCache writes back and evicts every segment file of dir from
// the page cache.
func dropFromPageCache(t *testing.T, dir string) int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
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
		f.Close()
	}
	return len(files)
}

func TestColdReadsGoThroughTheRing(t *testing.T) {
	dataDir := t.TempDir()
	srv := startServer(t, testConfig(t, dataDir))
	c := dial(t, srv.Addr(), client.Options{})
	createTopic(t, c, "cold", 1)
	produceRecords(t, c, "cold", 1, 0, 20_000, 500, 1)
	if n := dropFromPageCache(t, filepath.Join(dataDir, "topics", "cold", "0")); n == 0 {
		t.Fatal("no segment files found")
	}
	before := metricValue(t, "ringmq_fetch_cold_read_bytes_total")
	checkExactlyOnce(t, readAll(t, c, "cold", 1), 1, 20_000)
	if after := metricValue(t, "ringmq_fetch_cold_read_bytes_total"); after <= before {
		t.Fatalf("cold read bytes %v → %v: evicted data was not read through the ring", before, after)
	}
}
