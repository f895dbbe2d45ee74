package storage

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ringmq/ringmq/proto"
	"github.com/ringmq/ringmq/storage/vfs"
	"golang.org/x/sys/unix"
)

// Benchmarks of the storage I/O paths, each beside its baseline in the
// same loop: appends through the sync driver beside pwrite of the same
// bytes to a plain file, reads through Views beside pread of the segment
// files, and recovery of a 1 GiB partition. They report the log's MB/s,
// the baseline's (raw-MB/s) and the ratio (log/raw). Run with
//
//	go test ./storage -run '^$' -bench . -benchtime 3s

const benchBatchBytes = 64 << 10

// BenchmarkAppend appends 64 KiB batches of 100 B and 1 KiB records (no
// fsync) and, interleaved, pwrites the same bytes sequentially to a plain
// file that rolls at the same size (raw), into files of that size created
// sparse with ftruncate (raw-sparse: the same file-system path as the log's
// segments with prealloc=off) and into zero-filled files of that size
// (raw-prealloc).
//
// With prealloc=on (the default) the log writes into segments zero-filled
// by its background worker, which competes with the loop for CPU and disk;
// with prealloc=off segments are sparse, so the log and the plain file
// take the same file-system path and log/raw is the log's own overhead.
func BenchmarkAppend(b *testing.B) {
	for _, rec := range []int{100, 1024} {
		for _, pre := range []bool{true, false} {
			name := fmt.Sprintf("record=%dB/prealloc=%s", rec, map[bool]string{true: "on", false: "off"}[pre])
			b.Run(name, func(b *testing.B) { benchAppend(b, rec, pre) })
		}
	}
}

func benchAppend(b *testing.B, recordSize int, prealloc bool) {
	dir := b.TempDir()
	st, err := OpenStore(filepath.Join(dir, "data"), StoreOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	cfg := DefaultLogConfig()
	cfg.Preallocate = prealloc
	l, err := st.CreateLog("bench", 0, cfg)
	if err != nil {
		b.Fatal(err)
	}
	for l.prepared.Load() == nil { // start with the next segment ready
		time.Sleep(time.Millisecond)
	}
	raw := rawWriter{dir: dir, limit: cfg.SegmentBytes}
	defer raw.close()
	pre := preallocatedWriter(b, dir, cfg.SegmentBytes)
	defer pre.close()
	sparse := &rawWriter{dir: dir, limit: cfg.SegmentBytes, presize: true}
	sparse.rotate(b, 0)
	defer sparse.close()
	batch := batchOf(benchBatchBytes, recordSize)
	var d SyncDriver
	var logT, rawT, preT, sparseT time.Duration
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		if _, err := d.Append(l, batch); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		raw.write(b, batch)
		pre.rotate(b, len(batch)) // zero-fills a new file: not timed
		t2 := time.Now()
		pre.write(b, batch)
		sparse.rotate(b, len(batch)) // creates a sparse file: not timed
		t3 := time.Now()
		sparse.write(b, batch)
		logT, rawT, preT, sparseT = logT+t1.Sub(t0), rawT+t2.Sub(t1), preT+t3.Sub(t2), sparseT+time.Since(t3)
	}
	b.StopTimer()
	n := int64(len(batch)) * int64(b.N)
	reportVsRaw(b, n, logT, rawT)
	b.ReportMetric(float64(n)/1e6/sparseT.Seconds(), "raw-sparse-MB/s")
	b.ReportMetric(sparseT.Seconds()/logT.Seconds(), "log/raw-sparse")
	b.ReportMetric(float64(n)/1e6/preT.Seconds(), "raw-prealloc-MB/s")
	b.ReportMetric(preT.Seconds()/logT.Seconds(), "log/raw-prealloc")
	b.ReportMetric(float64(l.Stats().PreallocMisses), "prealloc-misses")
}

// preallocatedWriter is the second baseline: pwrite sequentially into
// files zero-filled beforehand (as the log's segments are), so that the
// comparison shows the log's own cost rather than the file system's cost
// of extending a file.
func preallocatedWriter(b *testing.B, dir string, size int64) *rawWriter {
	w := &rawWriter{dir: dir, limit: size, zeroFill: true}
	w.rotate(b, 0)
	return w
}

// rawWriter pwrites sequentially to plain files of limit bytes, created
// empty or (zeroFill) zero-filled and fdatasync'd.
type rawWriter struct {
	dir      string
	limit    int64
	zeroFill bool
	presize  bool // ftruncate each file to limit (sparse)
	fd       int
	n        int
	pos      int64
}

// rotate starts the next file when n more bytes do not fit.
func (w *rawWriter) rotate(b *testing.B, n int) {
	if w.n > 0 && w.pos+int64(n) <= w.limit {
		return
	}
	w.close()
	path := filepath.Join(w.dir, fmt.Sprintf("raw-%v-%v-%d", w.zeroFill, w.presize, w.n))
	size := int64(0)
	if w.zeroFill || w.presize {
		size = w.limit
	}
	fd, err := createSized(vfs.OS, path, size, w.zeroFill, nil)
	if err != nil {
		b.Fatal(err)
	}
	w.fd, w.pos = fd, 0
	w.n++
}

func (w *rawWriter) write(b *testing.B, p []byte) {
	w.rotate(b, len(p))
	if _, err := unix.Pwrite(w.fd, p, w.pos); err != nil {
		b.Fatal(err)
	}
	w.pos += int64(len(p))
}

func (w *rawWriter) close() {
	if w.n > 0 {
		unix.Close(w.fd)
	}
}

func reportVsRaw(b *testing.B, bytes int64, logT, rawT time.Duration) {
	logMBs := float64(bytes) / 1e6 / logT.Seconds()
	rawMBs := float64(bytes) / 1e6 / rawT.Seconds()
	b.ReportMetric(float64(logT.Nanoseconds())/float64(b.N), "ns/op")
	b.ReportMetric(logMBs, "MB/s")
	b.ReportMetric(rawMBs, "raw-MB/s")
	b.ReportMetric(logMBs/rawMBs, "log/raw")
}

// benchPartition writes a partition of size bytes (64 KiB batches of 1 KiB
// records, 256 MiB segments), fsyncs it and returns the crashed store's
// directory, ready to reopen.
func benchPartition(b *testing.B, size int64) (dir string, cfg LogConfig) {
	dir = filepath.Join(b.TempDir(), "data")
	st, err := OpenStore(dir, StoreOptions{})
	if err != nil {
		b.Fatal(err)
	}
	cfg = DefaultLogConfig()
	cfg.Preallocate = false
	l, err := st.CreateLog("bench", 0, cfg)
	if err != nil {
		b.Fatal(err)
	}
	var d SyncDriver
	batch := batchOf(benchBatchBytes, 1024)
	for l.Stats().Bytes < size {
		if _, err := d.Append(l, batch); err != nil {
			b.Fatal(err)
		}
	}
	if err := d.Flush(l); err != nil {
		b.Fatal(err)
	}
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	return dir, cfg
}

// BenchmarkRead1GiB reads a 1 GiB partition sequentially through Read
// (1 MiB per call), copying each View into a buffer as a send would, and,
// interleaved, preads the same segment files into the same buffer.
func BenchmarkRead1GiB(b *testing.B) {
	dir, cfg := benchPartition(b, 1<<30)
	st, err := OpenStore(dir, StoreOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	l, err := st.OpenExistingLog("bench", 0, cfg)
	if err != nil {
		b.Fatal(err)
	}
	var paths []string
	for _, s := range l.Segments(nil) {
		paths = append(paths, s.Path)
	}
	size := l.Stats().Bytes
	buf := make([]byte, 2<<20)
	views := make([]View, 0, 4)
	var logT, rawT time.Duration
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		views = readLog(b, l, buf, views)
		t1 := time.Now()
		readRaw(b, paths, buf[:1<<20])
		logT, rawT = logT+t1.Sub(t0), rawT+time.Since(t1)
	}
	b.StopTimer()
	reportVsRaw(b, size*int64(b.N), logT, rawT)
}

func readLog(b *testing.B, l *Log, buf []byte, views []View) []View {
	var err error
	for off := l.LogStart(); off < l.LogEnd(); {
		views, err = l.Read(off, 1<<20, views[:0])
		if err != nil {
			b.Fatal(err)
		}
		for i := range views {
			v := views[i].Bytes()
			copy(buf, v)
			off = lastBatchNext(v)
		}
		views = ReleaseViews(views)
	}
	return views
}

// lastBatchNext returns the offset after the last batch of v, reading
// only batch headers.
func lastBatchNext(v []byte) uint64 {
	var next uint64
	for len(v) > 0 {
		h, _ := proto.ParseBatchHeader(v)
		next = h.NextOffset()
		v = v[h.Size():]
	}
	return next
}

func readRaw(b *testing.B, paths []string, buf []byte) {
	for _, p := range paths {
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			b.Fatal(err)
		}
		for pos := int64(0); ; {
			n, err := unix.Pread(fd, buf, pos)
			if err != nil {
				b.Fatal(err)
			}
			if n == 0 {
				break
			}
			pos += int64(n)
		}
		unix.Close(fd)
	}
}

// BenchmarkRecover1GiB measures opening a 1 GiB partition after an unclean
// stop: with no checkpoint (every batch verified: the worst case) and
// with a checkpoint at the log end (nothing to verify).
func BenchmarkRecover1GiB(b *testing.B) {
	dir, cfg := benchPartition(b, 1<<30)
	for _, full := range []bool{true, false} {
		name := "from-checkpoint"
		if full {
			name = "no-checkpoint"
		}
		b.Run(name, func(b *testing.B) {
			var scanned int64
			for range b.N {
				b.StopTimer()
				os.Remove(filepath.Join(dir, cleanName))
				if full {
					os.Remove(filepath.Join(dir, topicsDir, "bench", "0", checkpointName))
				}
				b.StartTimer()
				st, err := OpenStore(dir, StoreOptions{})
				if err != nil {
					b.Fatal(err)
				}
				l, err := st.OpenExistingLog("bench", 0, cfg)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				scanned = l.Stats().RecoveryScannedBytes
				st.crash()
				b.StartTimer()
			}
			b.ReportMetric(float64(scanned), "scanned-bytes")
		})
	}
}
