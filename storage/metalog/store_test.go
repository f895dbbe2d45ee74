package metalog

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// step is one scripted operation: put (value non-nil), delete (value nil).
type step struct {
	key   string
	value *string
}

func put(k, v string) step { return step{k, &v} }
func del(k string) step    { return step{key: k} }

func (st step) apply(t *testing.T, s *Store) {
	t.Helper()
	var err error
	if st.value != nil {
		err = s.Put(st.key, []byte(*st.value))
	} else {
		err = s.Delete(st.key)
	}
	if err != nil {
		t.Fatalf("%+v: %v", st, err)
	}
}

func TestPutGetDeleteRange(t *testing.T) {
	tests := []struct {
		name   string
		steps  []step
		want   map[string]string
		prefix string
		ranged []string // keys Range(prefix) visits, in order
	}{
		{name: "empty", want: map[string]string{}},
		{
			name:  "put and overwrite",
			steps: []step{put("b", "1"), put("a", "2"), put("b", "3")},
			want:  map[string]string{"a": "2", "b": "3"}, ranged: []string{"a", "b"},
		},
		{
			name:  "delete and missing delete",
			steps: []step{put("a", "1"), put("b", "2"), del("a"), del("zz")},
			want:  map[string]string{"b": "2"}, ranged: []string{"b"},
		},
		{
			name:  "empty value",
			steps: []step{put("k", "")},
			want:  map[string]string{"k": ""}, ranged: []string{"k"},
		},
		{
			name:   "prefix",
			steps:  []step{put("cfg/b", "1"), put("cfg/a", "2"), put("cfh", "3"), put("cf", "4"), put("cfg/", "5")},
			want:   map[string]string{"cfg/a": "2", "cfg/b": "1", "cfh": "3", "cf": "4", "cfg/": "5"},
			prefix: "cfg/", ranged: []string{"cfg/", "cfg/a", "cfg/b"},
		},
		{
			name:  "delete then put again",
			steps: []step{put("a", "1"), del("a"), put("a", "2")},
			want:  map[string]string{"a": "2"}, ranged: []string{"a"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := mustOpen(t, dir, Options{})
			for _, st := range tc.steps {
				st.apply(t, s)
			}
			check := func(s *Store) {
				t.Helper()
				checkContents(t, s, tc.want)
				for k, v := range tc.want {
					if got, ok := s.Get(k); !ok || string(got) != v {
						t.Fatalf("Get(%q) = %q, %v; want %q", k, got, ok, v)
					}
				}
				if _, ok := s.Get("missing"); ok {
					t.Fatal("Get(missing) found something")
				}
				var keys []string
				s.Range(tc.prefix, func(k string, _ []byte) bool { keys = append(keys, k); return true })
				if !slices.Equal(keys, tc.ranged) {
					t.Fatalf("Range(%q) visited %q, want %q", tc.prefix, keys, tc.ranged)
				}
			}
			check(s)
			mustClose(t, s)
			s = mustOpen(t, dir, Options{}) // reopen replays the log
			check(s)
			if err := s.Compact(); err != nil {
				t.Fatal(err)
			}
			check(s)
			mustClose(t, s)
			s = mustOpen(t, dir, Options{}) // reopen loads the snapshot
			check(s)
			mustClose(t, s)
		})
	}
}

func TestRangeStopsAndGetCopies(t *testing.T) {
	s := mustOpen(t, t.TempDir(), Options{})
	defer mustClose(t, s)
	for _, k := range []string{"a", "b", "c"} {
		if err := s.Put(k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	var seen []string
	s.Range("", func(k string, _ []byte) bool { seen = append(seen, k); return k != "b" })
	if !slices.Equal(seen, []string{"a", "b"}) {
		t.Fatalf("Range visited %q after returning false at b", seen)
	}
	v, _ := s.Get("a")
	v[0] = 'x'
	if got, _ := s.Get("a"); string(got) != "a" {
		t.Fatalf("modifying Get's result changed the store: %q", got)
	}
	src := []byte("val")
	if err := s.Put("d", src); err != nil {
		t.Fatal(err)
	}
	src[0] = 'X'
	if got, _ := s.Get("d"); string(got) != "val" {
		t.Fatalf("modifying Put's argument changed the store: %q", got)
	}
	// Range's callback may call back into the store without deadlocking.
	s.Range("a", func(k string, _ []byte) bool { return s.Put("e", nil) == nil })
	if _, ok := s.Get("e"); !ok {
		t.Fatal("Put from inside Range did not land")
	}
}

func TestInvalidArguments(t *testing.T) {
	s := mustOpen(t, t.TempDir(), Options{})
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"empty key", s.Put("", nil), ErrInvalidKey},
		{"reserved offset prefix", s.Put("o/x", nil), ErrInvalidKey},
		{"reserved topic prefix", s.Delete("t/x"), ErrInvalidKey},
		{"key too large", s.Put(strings.Repeat("k", MaxKeySize+1), nil), ErrTooLarge},
		{"value too large", s.Put("k", make([]byte, MaxValueSize+1)), ErrTooLarge},
		{"empty group", s.CommitOffset("", "t", 0, OffsetCommit{}), ErrInvalidName},
		{"NUL in topic", s.CommitOffset("g", "a\x00b", 0, OffsetCommit{}), ErrInvalidName},
		{"empty topic name", s.PutTopic("", nil), ErrInvalidName},
	}
	for _, tc := range tests {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, tc.err, tc.want)
		}
	}
	if st := s.Stats(); st.LogBytes != 0 || st.Keys != 0 {
		t.Errorf("rejected writes left traces: %+v", st)
	}
	mustClose(t, s)
	if err := s.Put("k", nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Put after Close: %v", err)
	}
	if err := s.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
}

func TestLocked(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{})
	if _, err := Open(dir, Options{Logger: quiet}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	mustClose(t, s)
	mustClose(t, mustOpen(t, dir, Options{}))
}

func TestCompactKeepsLatestAndShrinks(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{CompactBytes: -1})
	want := map[string]string{}
	for round := 0; round < 50; round++ {
		for k := 0; k < 20; k++ {
			key, val := fmt.Sprintf("key%02d", k), fmt.Sprintf("value-%d-%d", k, round)
			if err := s.Put(key, []byte(val)); err != nil {
				t.Fatal(err)
			}
			want[key] = val
		}
		if err := s.Delete(fmt.Sprintf("key%02d", round%20)); err != nil {
			t.Fatal(err)
		}
		delete(want, fmt.Sprintf("key%02d", round%20))
	}
	before := fileSize(t, logPath(dir))
	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	after := fileSize(t, logPath(dir)) + fileSize(t, snapPath(dir))
	if st.LogBytes != 0 || fileSize(t, logPath(dir)) != 0 {
		t.Fatalf("log not reset: %+v", st)
	}
	if after >= before/10 {
		t.Fatalf("compaction did not shrink: %d bytes before, %d after", before, after)
	}
	wantSnap := int64(snapshotHeaderSize) + st.LiveBytes + recordSize("", make([]byte, endValueSize))
	if got := fileSize(t, snapPath(dir)); got != wantSnap {
		t.Fatalf("snapshot is %d bytes, want header + live %d + end = %d", got, st.LiveBytes, wantSnap)
	}
	checkContents(t, s, want)
	mustClose(t, s)
	s = mustOpen(t, dir, Options{})
	checkContents(t, s, want)
	mustClose(t, s)
}

func TestAutoCompaction(t *testing.T) {
	const limit = 4 << 10
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{CompactBytes: limit})
	want := map[string]string{}
	maxLog := int64(0)
	for i := 0; i < 2000; i++ {
		key, val := fmt.Sprintf("k%d", i%10), fmt.Sprintf("v%d", i)
		if err := s.Put(key, []byte(val)); err != nil {
			t.Fatal(err)
		}
		want[key] = val
		maxLog = max(maxLog, s.Stats().LogBytes)
	}
	if maxLog > limit+64 {
		t.Fatalf("log reached %d bytes with CompactBytes %d", maxLog, limit)
	}
	if _, err := os.Stat(snapPath(dir)); err != nil {
		t.Fatalf("no snapshot after automatic compaction: %v", err)
	}
	mustClose(t, s)
	s = mustOpen(t, dir, Options{})
	checkContents(t, s, want)
	mustClose(t, s)
}

func TestAutoCompactionWaitsForGarbage(t *testing.T) {
	// A log of distinct keys is all live data: compacting it would not
	// shrink anything, so the 2× rule must hold it back.
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{CompactBytes: 1 << 10})
	for i := 0; i < 200; i++ {
		if err := s.Put(fmt.Sprintf("k%04d", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Stats(); st.LogBytes != st.LiveBytes {
		t.Fatalf("compacted a log with no garbage: %+v", st)
	}
	if _, err := os.Stat(snapPath(dir)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("snapshot written: %v", err)
	}
	mustClose(t, s)
}

func TestSyncEveryWrite(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{SyncEveryWrite: true})
	if err := s.Put("a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	mustClose(t, s)
	s = mustOpen(t, dir, Options{})
	checkContents(t, s, map[string]string{"a": "1"})
	mustClose(t, s)
}

func TestFencedAfterFailedWrite(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{})
	if err := s.Put("a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	_ = s.log.Close() // make the next write and its clean-up truncate fail
	if err := s.Put("b", []byte("2")); !errors.Is(err, ErrFenced) {
		t.Fatalf("Put on a failing log: %v, want ErrFenced", err)
	}
	for name, err := range map[string]error{
		"Put": s.Put("c", nil), "Delete": s.Delete("a"), "Sync": s.Sync(), "Compact": s.Compact(),
	} {
		if !errors.Is(err, ErrFenced) {
			t.Errorf("%s after fencing: %v, want ErrFenced", name, err)
		}
	}
	if _, ok := s.Get("b"); ok {
		t.Error("failed Put is visible")
	}
	_ = s.Close() // the file is already closed: the error is expected
	s = mustOpen(t, dir, Options{})
	checkContents(t, s, map[string]string{"a": "1"})
	mustClose(t, s)
}

func TestConcurrentUse(t *testing.T) {
	const workers, perWorker = 4, 300
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{CompactBytes: 2 << 10})
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				key := fmt.Sprintf("w%d/k%d", w, i%7)
				if err := s.Put(key, []byte(fmt.Sprint(i))); err != nil {
					errs <- err
					return
				}
				if err := s.CommitOffset(fmt.Sprintf("g%d", w), "t", uint32(i%3), OffsetCommit{Offset: uint64(i)}); err != nil {
					errs <- err
					return
				}
				s.Range(fmt.Sprintf("w%d/", w), func(string, []byte) bool { return true })
				_ = s.GroupOffsets(fmt.Sprintf("g%d", (w+1)%workers))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	want := dump(s)
	mustClose(t, s)
	s = mustOpen(t, dir, Options{})
	defer mustClose(t, s)
	checkContents(t, s, want)
	for w := 0; w < workers; w++ {
		for i := perWorker - 7; i < perWorker; i++ {
			key := fmt.Sprintf("w%d/k%d", w, i%7)
			if v, _ := s.Get(key); string(v) != fmt.Sprint(i) {
				t.Errorf("%s = %q, want %d", key, v, i)
			}
		}
		offs := s.GroupOffsets(fmt.Sprintf("g%d", w))
		if len(offs) != 3 || offs[2].Offset != perWorker-1 {
			t.Errorf("group g%d offsets: %+v", w, offs)
		}
	}
	if !maps.Equal(want, dump(s)) {
		t.Error("reopen changed the contents")
	}
	if _, err := os.Stat(filepath.Join(dir, snapshotName)); err != nil {
		t.Errorf("expected automatic compactions to have run: %v", err)
	}
}
