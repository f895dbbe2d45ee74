package client

// A Partitioner picks the partition of each record the producer sends.
// Partition is called with the producer's lock held: it must be quick, must
// not call the producer, and is never called concurrently with itself by
// one producer.
type Partitioner interface {
	// Partition returns the partition of rec among n (n ≥ 1) partitions of
	// its topic: a value in [0, n), or Sticky to let the producer choose.
	// A value ≥ n fails the record with proto.UnknownPartition.
	Partition(rec *Record, n uint32) int64
}

// Sticky, returned by a Partitioner, lets the producer stick to one
// partition of the topic until that partition's batch is full or sent, then
// move on round robin: keyless records fill whole batches instead of
// spreading one record per partition.
const Sticky int64 = -1

// KeyPartition is the partition HashPartitioner gives a key among n: the
// 32-bit FNV-1a hash of the key, modulo n. Never change it: applications
// rely on a key landing on the same partition across versions and restarts.
func KeyPartition(key []byte, n uint32) uint32 {
	const (
		offset32 = 2166136261
		prime32  = 16777619
	)
	h := uint32(offset32)
	for _, c := range key {
		h ^= uint32(c)
		h *= prime32
	}
	return h % n
}

// HashPartitioner is the default partitioner: records with a key (even an
// empty one) go to KeyPartition(key, n); records with a nil key are
// Sticky.
type HashPartitioner struct{}

// Partition implements Partitioner.
func (HashPartitioner) Partition(rec *Record, n uint32) int64 {
	if rec.Key == nil {
		return Sticky
	}
	return int64(KeyPartition(rec.Key, n))
}

// ManualPartitioner sends every record to its Record.Partition.
type ManualPartitioner struct{}

// Partition implements Partitioner.
func (ManualPartitioner) Partition(rec *Record, _ uint32) int64 { return int64(rec.Partition) }

// RoundRobinPartitioner makes every record Sticky, keyed or not.
type RoundRobinPartitioner struct{}

// Partition implements Partitioner.
func (RoundRobinPartitioner) Partition(*Record, uint32) int64 { return Sticky }
