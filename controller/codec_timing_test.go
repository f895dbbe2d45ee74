package controller

import (
	"fmt"
	"testing"
)

// Baseline: a command is a few dozen bytes, appended once per metadata
// change; a snapshot is taken every Config.SnapshotEntries entries.

func BenchmarkAppendParseCommand(b *testing.B) {
	c := goldenHistory()[3] // create-topic with two configs
	buf := AppendCommand(nil, c)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendCommand(buf[:0], c)
		if _, _, err := ParseCommand(buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSnapshot(b *testing.B) {
	for _, topics := range []int{10, 1000} {
		b.Run(fmt.Sprintf("topics=%d", topics), func(b *testing.B) {
			s := NewState(0)
			for id := int32(1); id <= 5; id++ {
				_ = s.Apply(s.Applied()+1, reg(id))
			}
			for i := range topics {
				_ = s.Apply(s.Applied()+1, create(fmt.Sprintf("t%d", i), 8, 3))
			}
			buf := AppendSnapshot(nil, s)
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				buf = AppendSnapshot(buf[:0], s)
				if _, _, err := ParseSnapshot(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
