package replica

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
)

// Producer snapshot: the producer state as of an offset, written beside
// the partition's recovery checkpoint (like Kafka's .snapshot files) so
// recovery replays only the log after it. Little-endian; these offsets and
// constants are persisted: never change them.
//
//	offset size field
//	     0    8 magic            "RMQPRODS"
//	     8    4 crc32c           Castagnoli, over bytes [12, end)
//	    12    1 version          ProducerSnapshotVersion
//	    13    4 body_length      bytes after this field
//	    17    8 offset           the state covers every batch below it
//	    25    4 producer_count
//	    29    … producers        ascending producer_id, each:
//	              8 producer_id   ≥ 0
//	              2 epoch         ≥ 0
//	              1 batch_count   1..ProducerBatches
//	              … batches      oldest first, each 32 bytes:
//	                  4 first_seq, 4 last_seq   ≥ 0
//	                  8 base_offset, 8 last_offset   base ≤ last < offset
//	                  8 max_timestamp            unix milliseconds
//
// A snapshot is written whole to a temporary file and renamed, so any
// defect is corruption (ErrSnapshotCorrupt); a version this code does not
// know is ErrSnapshotVersion.
const (
	ProducerSnapshotVersion = 1

	producerSnapshotMagic = "RMQPRODS"
	snapHeaderSize        = 17 // magic, crc, version, body_length
	snapBodyFixed         = 12 // offset, producer_count
	snapProducerFixed     = 11 // producer_id, epoch, batch_count
	snapBatchSize         = 32
	maxSnapshotBodyLength = 1 << 30
	snapOffCRC            = 8
	snapOffVersion        = 12
	snapOffBodyLength     = 13
)

var (
	// ErrSnapshotCorrupt: a producer snapshot whose bytes are wrong (magic,
	// CRC, lengths, or contents out of order or range).
	ErrSnapshotCorrupt = errors.New("replica: producer snapshot corrupt")
	// ErrSnapshotVersion: a producer snapshot of a version not known here.
	ErrSnapshotVersion = errors.New("replica: producer snapshot version unknown")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ProducerSnapshot is a decoded producer snapshot: the offset it covers up
// to and every producer remembered, in ascending id.
type ProducerSnapshot struct {
	Offset    uint64
	Producers []SnapshotProducer
}

// SnapshotProducer is one producer of a snapshot: its epoch and its
// remembered batches, oldest first.
type SnapshotProducer struct {
	ID      int64
	Epoch   int16
	Batches []SnapshotBatch
}

// SnapshotBatch is one remembered batch.
type SnapshotBatch struct {
	FirstSeq, LastSeq      int32
	BaseOffset, LastOffset uint64
	MaxTimestamp           int64
}

// AppendProducerSnapshot appends the encoding of s to dst. s must be
// valid (as Snapshot returns it; Parse checks the same rules).
func AppendProducerSnapshot(dst []byte, s *ProducerSnapshot) []byte {
	start := len(dst)
	dst = append(dst, producerSnapshotMagic...)
	dst = binary.LittleEndian.AppendUint32(dst, 0) // crc, set below
	dst = append(dst, ProducerSnapshotVersion)
	dst = binary.LittleEndian.AppendUint32(dst, 0) // body_length, set below
	body := len(dst)
	dst = binary.LittleEndian.AppendUint64(dst, s.Offset)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(s.Producers)))
	for i := range s.Producers {
		p := &s.Producers[i]
		dst = binary.LittleEndian.AppendUint64(dst, uint64(p.ID))
		dst = binary.LittleEndian.AppendUint16(dst, uint16(p.Epoch))
		dst = append(dst, uint8(len(p.Batches)))
		for _, b := range p.Batches {
			dst = binary.LittleEndian.AppendUint32(dst, uint32(b.FirstSeq))
			dst = binary.LittleEndian.AppendUint32(dst, uint32(b.LastSeq))
			dst = binary.LittleEndian.AppendUint64(dst, b.BaseOffset)
			dst = binary.LittleEndian.AppendUint64(dst, b.LastOffset)
			dst = binary.LittleEndian.AppendUint64(dst, uint64(b.MaxTimestamp))
		}
	}
	binary.LittleEndian.PutUint32(dst[start+snapOffBodyLength:], uint32(len(dst)-body))
	binary.LittleEndian.PutUint32(dst[start+snapOffCRC:], crc32.Checksum(dst[start+snapOffVersion:], castagnoli))
	return dst
}

// snapReader reads little-endian fields and keeps its first error
// (running out of bytes); it never reads past its buffer.
type snapReader struct {
	b   []byte
	err error
}

func (r *snapReader) take(n int) []byte {
	if r.err != nil || len(r.b) < n {
		if r.err == nil {
			r.err = fmt.Errorf("%w: body ends early", ErrSnapshotCorrupt)
		}
		return make([]byte, n)
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *snapReader) u8() uint8   { return r.take(1)[0] }
func (r *snapReader) u16() uint16 { return binary.LittleEndian.Uint16(r.take(2)) }
func (r *snapReader) u32() uint32 { return binary.LittleEndian.Uint32(r.take(4)) }
func (r *snapReader) u64() uint64 { return binary.LittleEndian.Uint64(r.take(8)) }

// ParseProducerSnapshot decodes one producer snapshot from the front of
// src and returns it with the bytes after it. Short input, a bad magic,
// CRC or length, or contents that break the rules in the layout are
// ErrSnapshotCorrupt; an unknown version is ErrSnapshotVersion.
func ParseProducerSnapshot(src []byte) (ProducerSnapshot, []byte, error) {
	if len(src) < snapHeaderSize || string(src[:len(producerSnapshotMagic)]) != producerSnapshotMagic {
		return ProducerSnapshot{}, src, fmt.Errorf("%w: no snapshot header", ErrSnapshotCorrupt)
	}
	if v := src[snapOffVersion]; v != ProducerSnapshotVersion {
		return ProducerSnapshot{}, src, fmt.Errorf("%w: version %d", ErrSnapshotVersion, v)
	}
	n := binary.LittleEndian.Uint32(src[snapOffBodyLength:])
	if n < snapBodyFixed || n > maxSnapshotBodyLength || uint64(n) > uint64(len(src)-snapHeaderSize) {
		return ProducerSnapshot{}, src, fmt.Errorf("%w: body length %d, %d bytes present", ErrSnapshotCorrupt, n, len(src)-snapHeaderSize)
	}
	end := snapHeaderSize + int(n)
	if crc32.Checksum(src[snapOffVersion:end], castagnoli) != binary.LittleEndian.Uint32(src[snapOffCRC:]) {
		return ProducerSnapshot{}, src, fmt.Errorf("%w: crc mismatch", ErrSnapshotCorrupt)
	}
	s, err := parseSnapshotBody(src[snapHeaderSize:end])
	if err != nil {
		return ProducerSnapshot{}, src, err
	}
	return s, src[end:], nil
}

func parseSnapshotBody(body []byte) (ProducerSnapshot, error) {
	r := snapReader{b: body}
	s := ProducerSnapshot{Offset: r.u64()}
	count := r.u32()
	if uint64(count)*(snapProducerFixed+snapBatchSize) > uint64(len(r.b)) {
		return ProducerSnapshot{}, fmt.Errorf("%w: %d producers in %d bytes", ErrSnapshotCorrupt, count, len(r.b))
	}
	s.Producers = make([]SnapshotProducer, count)
	for i := range s.Producers {
		p := &s.Producers[i]
		p.ID, p.Epoch = int64(r.u64()), int16(r.u16())
		nb := r.u8()
		if r.err != nil || nb < 1 || nb > ProducerBatches {
			return ProducerSnapshot{}, errors.Join(r.err, fmt.Errorf("%w: producer %d has %d batches", ErrSnapshotCorrupt, p.ID, nb))
		}
		p.Batches = make([]SnapshotBatch, nb)
		for j := range p.Batches {
			b := &p.Batches[j]
			b.FirstSeq, b.LastSeq = int32(r.u32()), int32(r.u32())
			b.BaseOffset, b.LastOffset, b.MaxTimestamp = r.u64(), r.u64(), int64(r.u64())
		}
	}
	if r.err != nil {
		return ProducerSnapshot{}, r.err
	}
	if len(r.b) != 0 {
		return ProducerSnapshot{}, fmt.Errorf("%w: %d bytes after the last producer", ErrSnapshotCorrupt, len(r.b))
	}
	if err := s.validate(); err != nil {
		return ProducerSnapshot{}, err
	}
	return s, nil
}

// validate checks the rules of the layout: ids ascending and ≥ 0, epochs
// and sequences ≥ 0, batches in offset order and below Offset.
func (s *ProducerSnapshot) validate() error {
	prev := int64(-1)
	for _, p := range s.Producers {
		if p.ID <= prev || p.Epoch < 0 || len(p.Batches) < 1 || len(p.Batches) > ProducerBatches {
			return fmt.Errorf("%w: producer %d (after %d) epoch %d with %d batches", ErrSnapshotCorrupt, p.ID, prev, p.Epoch, len(p.Batches))
		}
		prev = p.ID
		var after uint64
		for j, b := range p.Batches {
			if b.FirstSeq < 0 || b.LastSeq < 0 || b.BaseOffset > b.LastOffset || b.LastOffset >= s.Offset || (j > 0 && b.BaseOffset < after) {
				return fmt.Errorf("%w: producer %d batch %d: sequences %d-%d at offsets %d-%d (snapshot offset %d)",
					ErrSnapshotCorrupt, p.ID, j, b.FirstSeq, b.LastSeq, b.BaseOffset, b.LastOffset, s.Offset)
			}
			after = b.LastOffset + 1
		}
	}
	return nil
}

// Snapshot returns the state as a ProducerSnapshot at End: the batches
// visible in the log, not those in flight. It allocates (it is taken once
// per checkpoint, not per batch).
func (s *ProducerState) Snapshot() ProducerSnapshot {
	snap := ProducerSnapshot{Offset: s.end}
	for id, e := range s.producers {
		if e.n == 0 {
			continue
		}
		p := SnapshotProducer{ID: id, Epoch: e.epoch, Batches: make([]SnapshotBatch, e.n)}
		for i := range p.Batches {
			m := e.at(i)
			p.Batches[i] = SnapshotBatch{FirstSeq: m.firstSeq, LastSeq: m.lastSeq, BaseOffset: m.base, LastOffset: m.last, MaxTimestamp: m.maxTimestamp}
		}
		snap.Producers = append(snap.Producers, p)
	}
	slices.SortFunc(snap.Producers, func(a, b SnapshotProducer) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return snap
}

// Restore replaces the state with snap; recovery then Replays the log
// from snap.Offset on. A snapshot ahead of the recovered log end (it
// covers batches a crash took back) is ErrSnapshotAhead: use an older one,
// or rebuild from the log alone. Nothing may be in flight (ErrBusy).
func (s *ProducerState) Restore(snap *ProducerSnapshot, logEnd uint64) error {
	switch {
	case s.pending.len() > 0:
		return fmt.Errorf("%w: batches in flight", ErrBusy)
	case snap.Offset > logEnd:
		return fmt.Errorf("%w: snapshot at %d, log end %d", ErrSnapshotAhead, snap.Offset, logEnd)
	}
	if err := snap.validate(); err != nil {
		return err
	}
	clear(s.producers)
	for _, p := range snap.Producers {
		for _, b := range p.Batches {
			s.apply(p.ID, p.Epoch, batchMeta{firstSeq: b.FirstSeq, lastSeq: b.LastSeq, base: b.BaseOffset, last: b.LastOffset, maxTimestamp: b.MaxTimestamp})
		}
	}
	s.end = snap.Offset
	return nil
}
