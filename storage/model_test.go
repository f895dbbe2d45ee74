package storage

import (
	"math"

	"github.com/ringmq/ringmq/proto"
)

// model is a naive in-memory partition log: the oracle of the property
// test. It keeps every batch and the segment boundaries the rules imply.
type model struct {
	cfg     LogConfig
	batches []modelBatch
	segs    []modelSeg
	next    uint64
}

type modelBatch struct {
	base, next uint64
	data       []byte
	ts         []int64 // one per record
}

type modelSeg struct {
	base           uint64
	bytes          int64
	firstTs, maxTs int64
}

func newModel(cfg LogConfig) *model {
	return &model{cfg: cfg, segs: []modelSeg{{maxTs: math.MinInt64}}}
}

// modelBatches splits appended bytes into model batches with their
// record timestamps (the bytes were patched by PrepareAppend).
func modelBatches(b []byte) []modelBatch {
	var out []modelBatch
	for len(b) > 0 {
		h, rest, err := proto.ValidateBatch(b)
		if err != nil {
			panic(err)
		}
		mb := modelBatch{base: h.BaseOffset, next: h.NextOffset(), data: b[:h.Size()]}
		it, _ := proto.NewRecordIter(mb.data)
		for it.Next() {
			mb.ts = append(mb.ts, it.Record().Timestamp)
		}
		out = append(out, mb)
		b = rest
	}
	return out
}

func (m *model) append(b []byte) {
	bs := modelBatches(b)
	first, _ := proto.ParseBatchHeader(b)
	maxTs := int64(math.MinInt64)
	for _, mb := range bs {
		h, _ := proto.ParseBatchHeader(mb.data)
		maxTs = max(maxTs, h.MaxTimestamp)
	}
	a := &m.segs[len(m.segs)-1]
	if a.bytes > 0 && (a.bytes+int64(len(b)) > m.cfg.SegmentBytes || (m.cfg.SegmentMs > 0 && maxTs-a.firstTs >= m.cfg.SegmentMs)) {
		m.roll()
		a = &m.segs[len(m.segs)-1]
	}
	if a.bytes == 0 {
		a.firstTs = first.MaxTimestamp
	}
	a.bytes += int64(len(b))
	a.maxTs = max(a.maxTs, maxTs)
	m.batches = append(m.batches, bs...)
	m.next = bs[len(bs)-1].next
}

func (m *model) roll() {
	if m.segs[len(m.segs)-1].bytes > 0 {
		m.segs = append(m.segs, modelSeg{base: m.next, maxTs: math.MinInt64})
	}
}

func (m *model) start() uint64 { return m.segs[0].base }

// retention applies the deletion rule to segments that are all flushed.
func (m *model) retention(nowMs int64) {
	var total int64
	for _, s := range m.segs {
		total += s.bytes
	}
	for len(m.segs) > 1 {
		s := m.segs[0]
		old := m.cfg.RetentionMs >= 0 && s.maxTs < nowMs-m.cfg.RetentionMs
		big := m.cfg.RetentionBytes >= 0 && total-s.bytes >= m.cfg.RetentionBytes
		if !old && !big {
			break
		}
		total -= s.bytes
		m.segs = m.segs[1:]
	}
	for len(m.batches) > 0 && m.batches[0].base < m.start() {
		m.batches = m.batches[1:]
	}
}

// read returns the bytes Read(off, maxBytes) must return, and whether off
// is in range.
func (m *model) read(off uint64, maxBytes int) ([]byte, bool) {
	if off < m.start() || off > m.next {
		return nil, false
	}
	var out []byte
	for _, b := range m.batches {
		if b.next <= off {
			continue
		}
		if len(out) > 0 && len(out)+len(b.data) > maxBytes {
			break
		}
		out = append(out, b.data...)
	}
	return out, true
}

// seek is the first offset with a record timestamp ≥ ts, or the end.
func (m *model) seek(ts int64) uint64 {
	for _, b := range m.batches {
		for i, t := range b.ts {
			if t >= ts {
				return b.base + uint64(i)
			}
		}
	}
	return m.next
}
