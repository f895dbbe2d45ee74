package controller

import (
	"fmt"
	"slices"
)

// AppendSnapshot appends the whole state as one snapshot frame (see
// doc.go): brokers by id, topics by name, so equal states encode to equal
// bytes.
func AppendSnapshot(dst []byte, s *State) []byte {
	return appendFrame(dst, snapshotType, func(b []byte) []byte {
		b = appendUvarint(b, s.applied)
		b = appendUvarint(b, uint64(len(s.brokers)))
		for _, br := range s.Brokers() {
			b = appendUvarint(b, uint64(br.ID))
			b = appendString(b, br.Addr)
			b = appendUvarint(b, br.Epoch)
			b = appendBool(b, br.Alive)
		}
		b = appendUvarint(b, uint64(len(s.topics)))
		for _, name := range s.TopicNames() {
			t := s.topics[name]
			b = appendString(b, t.Name)
			b = appendUvarint(b, uint64(len(t.Configs)))
			for _, e := range t.Configs {
				b = appendString(b, e.Key)
				b = appendString(b, e.Value)
			}
			b = appendUvarint(b, uint64(len(t.Partitions)))
			for _, p := range t.Partitions {
				b = appendIDs(b, p.Replicas)
				b = appendUvarint(b, uint64(int64(p.Leader)+1)) // NoLeader is 0
				b = appendUvarint(b, uint64(p.LeaderEpoch))
				b = appendUvarint(b, uint64(p.PartitionEpoch))
				b = appendIDs(b, p.ISR)
			}
		}
		return appendSecurity(b, s)
	})
}

// ParseSnapshot decodes a snapshot frame. It checks the format and the
// state's invariants, so a snapshot that decodes is one Apply could have
// built.
func ParseSnapshot(src []byte) (*State, []byte, error) {
	typ, fields, rest, err := parseFrame(src, MaxSnapshotSize)
	if err != nil {
		return nil, src, err
	}
	if typ != snapshotType {
		return nil, src, fmt.Errorf("%w: frame type %d is not a snapshot", ErrCorrupt, typ)
	}
	r := reader{b: fields}
	s := NewState(r.uvarint(^uint64(0), "applied"))
	nb := r.count(maxBrokerID, "brokers")
	for i := 0; i < nb && r.err == nil; i++ {
		b := &Broker{ID: r.int32("broker")}
		b.Addr = r.string(MaxAddrLen, "addr")
		b.Epoch = r.uvarint(^uint64(0), "broker epoch")
		b.Alive = r.bool("alive")
		if _, dup := s.brokers[b.ID]; (dup || b.ID < 1) && r.err == nil {
			r.fail("broker id %d repeated or < 1", b.ID)
		}
		s.brokers[b.ID] = b
	}
	nt := r.count(1<<31, "topics")
	for i := 0; i < nt && r.err == nil; i++ {
		t := parseTopic(&r)
		if _, dup := s.topics[t.Name]; dup && r.err == nil {
			r.fail("topic %q repeated", t.Name)
		}
		s.topics[t.Name] = t
	}
	parseSecurity(&r, s)
	if err := r.done("snapshot"); err != nil {
		return nil, src, err
	}
	if err := s.CheckInvariants(); err != nil {
		return nil, src, fmt.Errorf("%w: snapshot: %v", ErrCorrupt, err)
	}
	return s, rest, nil
}

func parseTopic(r *reader) *Topic {
	t := &Topic{Name: r.string(maxNameLen, "topic")}
	if n := r.count(MaxConfigs, "configs"); n > 0 {
		t.Configs = make([]ConfigEntry, n)
		for i := range t.Configs {
			t.Configs[i].Key = r.string(MaxConfigKey, "config key")
			t.Configs[i].Value = r.string(MaxConfigValue, "config value")
		}
	}
	n := r.count(MaxPartitions, "partitions")
	if n == 0 && r.err == nil {
		r.fail("topic %q without partitions", t.Name)
	}
	t.Partitions = make([]Partition, n)
	for i := range t.Partitions {
		p := &t.Partitions[i]
		p.Replicas = r.ids(MaxReplicas, "replicas")
		p.Leader = int32(int64(r.uvarint(maxBrokerID+1, "leader")) - 1)
		p.LeaderEpoch = r.int32("leader epoch")
		p.PartitionEpoch = r.int32("partition epoch")
		p.ISR = r.ids(MaxReplicas, "isr")
		if len(p.Replicas) == 0 && r.err == nil {
			r.fail("topic %q partition %d without replicas", t.Name, i)
		}
		if p.ISR == nil {
			p.ISR = []int32{}
		}
	}
	return t
}

// Equal reports whether two states hold the same metadata and applied
// index (tests compare nodes with it).
func (s *State) Equal(o *State) bool {
	return slices.Equal(AppendSnapshot(nil, s), AppendSnapshot(nil, o))
}
