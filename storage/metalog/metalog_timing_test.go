package metalog

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkPut measures Put of a 64-byte value over 1000 cycling keys, with
// and without fdatasync per write (automatic compaction on at its default).
// The raw sub-benchmarks are the baseline: a pwrite of the same record size
// (plus fdatasync) on a plain file, in the same run.
func BenchmarkPut(b *testing.B) {
	value := make([]byte, 64)
	recSize := recordSize("key-0000", value)
	for _, sync := range []bool{false, true} {
		b.Run(fmt.Sprintf("store/sync=%v", sync), func(b *testing.B) {
			s := mustOpen(b, b.TempDir(), Options{SyncEveryWrite: sync})
			defer mustClose(b, s)
			keys := make([]string, 1000)
			for i := range keys {
				keys[i] = fmt.Sprintf("key-%04d", i)
			}
			b.SetBytes(recSize)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := s.Put(keys[i%len(keys)], value); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("raw-pwrite/sync=%v", sync), func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "raw"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			buf := make([]byte, recSize)
			b.SetBytes(recSize)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := f.WriteAt(buf, int64(i)*recSize); err != nil {
					b.Fatal(err)
				}
				if sync {
					if err := unix.Fdatasync(int(f.Fd())); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkOpen measures recovery: replaying a 1 MiB log of offset commits.
func BenchmarkOpen(b *testing.B) {
	dir := b.TempDir()
	s := mustOpen(b, dir, Options{CompactBytes: -1})
	for s.Stats().LogBytes < 1<<20 {
		n := s.Stats().Keys
		if err := s.CommitOffset("group", "topic", uint32(n%5000), OffsetCommit{Offset: uint64(n)}); err != nil {
			b.Fatal(err)
		}
	}
	size := s.Stats().LogBytes
	mustClose(b, s)
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		mustClose(b, mustOpen(b, dir, Options{}))
	}
}
