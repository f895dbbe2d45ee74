package proto

import (
	"go/build"
	"strings"
	"testing"
)

// TestImports keeps the package doc's promise: proto imports the standard
// library and the compression codecs only, so the client builds anywhere.
func TestImports(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	codecs := []string{"github.com/golang/snappy", "github.com/pierrec/lz4/", "github.com/klauspost/compress/"}
	for _, imp := range pkg.Imports {
		first, _, _ := strings.Cut(imp, "/")
		if !strings.Contains(first, ".") {
			continue // the standard library
		}
		ok := false
		for _, c := range codecs {
			ok = ok || imp == strings.TrimSuffix(c, "/") || strings.HasPrefix(imp, c)
		}
		if !ok {
			t.Errorf("proto imports %s: only the standard library and the batch codecs are allowed (see doc.go)", imp)
		}
	}
}
