package driver

import (
	"os"
	"path/filepath"
	"slices"
)

// FS is the file system the controller's log lives on: the operating
// system's (OSFS) in the server, an in-memory one that can cut the write
// stream in crash tests. Names are paths.
type FS interface {
	Create(name string) (File, error)     // a new empty file, write only (truncates an existing one)
	OpenAppend(name string) (File, error) // an existing file, writes go to its end
	ReadFile(name string) ([]byte, error)
	Rename(from, to string) error
	Remove(name string) error
	ReadDir(dir string) ([]string, error) // file names, sorted
	MkdirAll(dir string) error
	SyncDir(dir string) error
}

// File is an open file of an FS.
type File interface {
	Write(p []byte) (int, error)
	Truncate(size int64) error
	Sync() error
	Close() error
}

// OSFS is the operating system's file system.
type OSFS struct{}

func (OSFS) Create(name string) (File, error) {
	return os.OpenFile(name, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
}

func (OSFS) OpenAppend(name string) (File, error) {
	return os.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0)
}

func (OSFS) ReadFile(name string) ([]byte, error) { return os.ReadFile(name) }
func (OSFS) Rename(from, to string) error         { return os.Rename(from, to) }
func (OSFS) Remove(name string) error             { return os.Remove(name) }
func (OSFS) MkdirAll(dir string) error            { return os.MkdirAll(dir, 0o755) }

func (OSFS) ReadDir(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		if !e.IsDir() {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names, nil
}

func (OSFS) SyncDir(dir string) error {
	d, err := os.Open(filepath.Clean(dir))
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
