package metalog

import (
	"slices"
	"sort"
	"strings"
)

// table is the live key → value map with its keys kept sorted for Range.
// Values are never modified in place: a put replaces the slice, so a value
// handed out by Range stays valid. While loading, keys is left stale and
// rebuilt once by finishLoad (sorted inserts would make replay quadratic).
type table struct {
	m         map[string][]byte
	keys      []string // sorted; stale while loading
	loading   bool
	liveBytes int64 // sum of recordSize over live entries: the snapshot's size
}

func newTable() table { return table{m: make(map[string][]byte), loading: true} }

// put stores value (which the table now owns) under key.
func (t *table) put(key string, value []byte) {
	old, exists := t.m[key]
	if exists {
		t.liveBytes -= recordSize(key, old)
	} else if !t.loading {
		i, _ := slices.BinarySearch(t.keys, key)
		t.keys = slices.Insert(t.keys, i, key)
	}
	t.m[key] = value
	t.liveBytes += recordSize(key, value)
}

// delete removes key and reports whether it was there.
func (t *table) delete(key string) bool {
	old, exists := t.m[key]
	if !exists {
		return false
	}
	delete(t.m, key)
	t.liveBytes -= recordSize(key, old)
	if !t.loading {
		i, found := slices.BinarySearch(t.keys, key)
		if !found {
			panic("BUG: metalog: key in map but not in sorted keys")
		}
		t.keys = slices.Delete(t.keys, i, i+1)
	}
	return true
}

// finishLoad rebuilds the sorted keys after bulk loading.
func (t *table) finishLoad() {
	t.keys = make([]string, 0, len(t.m))
	for k := range t.m {
		t.keys = append(t.keys, k)
	}
	sort.Strings(t.keys)
	t.loading = false
}

// seek returns the index of the first key ≥ key.
func (t *table) seek(key string) int {
	i, _ := slices.BinarySearch(t.keys, key)
	return i
}

// prefixEnd returns the index just past the last key that has prefix,
// starting the scan at i.
func (t *table) prefixEnd(i int, prefix string) int {
	n := sort.Search(len(t.keys)-i, func(j int) bool {
		return !strings.HasPrefix(t.keys[i+j], prefix)
	})
	return i + n
}

// entry is a key and its (shared, read-only) value.
type entry struct {
	key   string
	value []byte
}

// collect appends the entries whose keys have prefix, in key order.
func (t *table) collect(dst []entry, prefix string) []entry {
	i := t.seek(prefix)
	end := t.prefixEnd(i, prefix)
	for _, k := range t.keys[i:end] {
		dst = append(dst, entry{k, t.m[k]})
	}
	return dst
}
