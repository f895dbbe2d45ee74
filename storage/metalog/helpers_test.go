package metalog

import (
	"flag"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var seedFlag = flag.Uint64("seed", 0, "seed for randomized tests (0: time-based)")

// testRand returns a seeded generator and prints the seed if the test fails.
func testRand(t testing.TB) *rand.Rand {
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("replay with -seed=%d", seed)
		}
	})
	return rand.New(rand.NewPCG(seed, 0x6d657461))
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func mustOpen(t testing.TB, dir string, opts Options) *Store {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func mustClose(t testing.TB, s *Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// dump returns every key and value of s.
func dump(s *Store) map[string]string {
	m := map[string]string{}
	s.Range("", func(k string, v []byte) bool {
		m[k] = string(v)
		return true
	})
	return m
}

func checkContents(t testing.TB, s *Store, want map[string]string) {
	t.Helper()
	if got := dump(s); !maps.Equal(got, want) {
		t.Fatalf("contents:\n got  %q\n want %q", got, want)
	}
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func logPath(dir string) string  { return filepath.Join(dir, logName) }
func snapPath(dir string) string { return filepath.Join(dir, snapshotName) }
