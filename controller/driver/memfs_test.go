package driver

import (
	"errors"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"
)

// errCrash is what memFS returns once the write stream was cut.
var errCrash = errors.New("memfs: crashed")

// memFS is an in-memory FS that can cut the write stream: the cutAt-th
// mutating operation (write, truncate, create, rename, remove) fails, a
// write keeping only the first half of its bytes (a torn write), and so
// does every mutating operation after it. What was written stays, as after
// a process crash.
type memFS struct {
	mu     sync.Mutex
	files  map[string][]byte
	ops    int
	cutAt  int // 0: never
	cutted bool
}

func newMemFS() *memFS { return &memFS{files: map[string][]byte{}} }

// mutate counts one mutating operation; false when it must fail.
func (m *memFS) mutate() (ok, torn bool) {
	if m.cutted {
		return false, false
	}
	m.ops++
	if m.cutAt > 0 && m.ops >= m.cutAt {
		m.cutted = true
		return false, true
	}
	return true, false
}

// restart clears the cut: the process starts again over the same files.
func (m *memFS) restart() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cutAt, m.cutted, m.ops = 0, false, 0
}

type memFile struct {
	fs   *memFS
	name string
}

func (m *memFS) Create(name string) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ok, _ := m.mutate(); !ok {
		return nil, errCrash
	}
	m.files[path.Clean(name)] = nil
	return &memFile{m, path.Clean(name)}, nil
}

func (m *memFS) OpenAppend(name string) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.files[path.Clean(name)]; !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return &memFile{m, path.Clean(name)}, nil
}

func (m *memFS) ReadFile(name string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.files[path.Clean(name)]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return slices.Clone(b), nil
}

func (m *memFS) Rename(from, to string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.files[path.Clean(from)]
	if !ok {
		return &fs.PathError{Op: "rename", Path: from, Err: fs.ErrNotExist}
	}
	if ok, _ := m.mutate(); !ok {
		return errCrash
	}
	delete(m.files, path.Clean(from))
	m.files[path.Clean(to)] = b
	return nil
}

func (m *memFS) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.files[path.Clean(name)]; !ok {
		return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	}
	if ok, _ := m.mutate(); !ok {
		return errCrash
	}
	delete(m.files, path.Clean(name))
	return nil
}

func (m *memFS) ReadDir(dir string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	prefix := path.Clean(dir) + "/"
	var names []string
	for name := range m.files {
		if rest, ok := strings.CutPrefix(name, prefix); ok && !strings.Contains(rest, "/") {
			names = append(names, rest)
		}
	}
	slices.Sort(names)
	return names, nil
}

func (m *memFS) MkdirAll(string) error { return nil }

func (m *memFS) SyncDir(string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cutted {
		return errCrash
	}
	return nil
}

func (f *memFile) Write(p []byte) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	ok, torn := f.fs.mutate()
	if !ok {
		if torn {
			f.fs.files[f.name] = append(f.fs.files[f.name], p[:len(p)/2]...)
		}
		return 0, errCrash
	}
	f.fs.files[f.name] = append(f.fs.files[f.name], p...)
	return len(p), nil
}

func (f *memFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if ok, _ := f.fs.mutate(); !ok {
		return errCrash
	}
	f.fs.files[f.name] = f.fs.files[f.name][:size]
	return nil
}

func (f *memFile) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.fs.cutted {
		return errCrash
	}
	return nil
}

func (f *memFile) Close() error { return nil }
