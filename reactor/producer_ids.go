package reactor

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"

	"github.com/ringmq/ringmq/proto"
)

// Producer ids (InitProducer, on the admin goroutine). An id is unique
// across a cluster by construction: the node id in the high bits, a
// node-local counter in the low ones,
//
//	bit 63: 0 | bits 62-40: cluster.node_id (1..2^23-1) | bits 39-0: counter
//
// and the counter is handed out from blocks reserved durably in
// <data>/producer-ids before any id of the block is answered, so a crash
// skips the rest of a block and never repeats an id. When the controller
// hands out ids for the cluster (Kafka's AllocateProducerIds), it will
// reserve the blocks instead and this node-local file goes; the id layout
// and the API stay.
//
// producer-ids (little-endian; persisted: never change):
//
//	offset size field
//	     0    7 magic      "RMQPIDS"
//	     7    1 version    1
//	     8    8 next       the first counter value not reserved yet
//	    16    4 crc32c     Castagnoli over bytes [0, 16)
const (
	producerIDsFile    = "producer-ids"
	producerIDsMagic   = "RMQPIDS"
	producerIDsVersion = 1
	producerIDsSize    = 20

	producerIDNodeShift = 40
	producerIDCounter   = 1<<producerIDNodeShift - 1
	maxProducerNodeID   = 1<<(63-producerIDNodeShift) - 1
	producerIDBlock     = 1000
)

// producerIDs is the admin goroutine's id counter: [next, limit) is
// reserved on disk and not handed out yet.
type producerIDs struct {
	loaded      bool
	next, limit uint64
}

var errProducerIDs = errors.New("producer ids")

func appendProducerIDs(dst []byte, next uint64) []byte {
	start := len(dst)
	dst = append(dst, producerIDsMagic...)
	dst = append(dst, producerIDsVersion)
	dst = binary.LittleEndian.AppendUint64(dst, next)
	return binary.LittleEndian.AppendUint32(dst, proto.CRC32C(dst[start:]))
}

func parseProducerIDs(b []byte) (uint64, error) {
	switch {
	case len(b) != producerIDsSize || string(b[:7]) != producerIDsMagic:
		return 0, fmt.Errorf("%w: %s: not a producer id file (%d bytes)", errProducerIDs, producerIDsFile, len(b))
	case b[7] != producerIDsVersion:
		return 0, fmt.Errorf("%w: %s: version %d unknown", errProducerIDs, producerIDsFile, b[7])
	case binary.LittleEndian.Uint32(b[16:]) != proto.CRC32C(b[:16]):
		return 0, fmt.Errorf("%w: %s: crc mismatch", errProducerIDs, producerIDsFile)
	}
	return binary.LittleEndian.Uint64(b[8:]), nil
}

// nextProducerID hands out a new producer id, reserving a new block on
// disk first when the current one is used up.
func (s *Server) nextProducerID() (int64, error) {
	node := s.cfg.Cluster.NodeID
	if node > maxProducerNodeID {
		return 0, fmt.Errorf("%w: cluster.node_id %d does not fit a producer id (at most %d)", errProducerIDs, node, maxProducerNodeID)
	}
	p := &s.pids
	if err := s.loadProducerIDs(); err != nil {
		return 0, err
	}
	if p.next == p.limit {
		limit := p.limit + producerIDBlock
		if limit > producerIDCounter {
			return 0, fmt.Errorf("%w: this node's %d producer ids are used up", errProducerIDs, producerIDCounter)
		}
		if err := s.store.WriteFile(producerIDsFile, appendProducerIDs(nil, limit)); err != nil {
			return 0, fmt.Errorf("%w: reserve a block: %w", errProducerIDs, err)
		}
		p.limit = limit
	}
	id := int64(node<<producerIDNodeShift | p.next)
	p.next++
	return id, nil
}

func (s *Server) loadProducerIDs() error {
	p := &s.pids
	if p.loaded {
		return nil
	}
	b, err := s.store.ReadFile(producerIDsFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		p.next = 0
	case err != nil:
		return fmt.Errorf("%w: %w", errProducerIDs, err)
	default:
		if p.next, err = parseProducerIDs(b); err != nil {
			return err
		}
	}
	p.limit, p.loaded = p.next, true
	return nil
}

// issuedProducerID reports whether this node may have handed out id.
func (s *Server) issuedProducerID(id int64) bool {
	if s.loadProducerIDs() != nil {
		return false
	}
	return uint64(id)>>producerIDNodeShift == s.cfg.Cluster.NodeID && uint64(id)&producerIDCounter < s.pids.next
}

// initProducer answers InitProducer: a new id at epoch 0, or the next
// epoch of an id this node issued (a new id past MaxProducerEpoch).
func (s *Server) initProducer(body []byte) (proto.ErrorCode, proto.Message) {
	var req proto.InitProducerRequest
	if err := req.Decode(body); err != nil {
		return proto.InvalidRequest, nil
	}
	fail := func(code proto.ErrorCode) (proto.ErrorCode, proto.Message) {
		return proto.None, &proto.InitProducerResponse{Error: code, ProducerID: proto.NoProducerID, Epoch: -1}
	}
	switch {
	case req.ProducerID < 0 && req.ProducerID != proto.NoProducerID:
		return fail(proto.InvalidRequest)
	case req.ProducerID >= 0 && !s.issuedProducerID(req.ProducerID):
		return fail(proto.UnknownProducerID)
	case req.ProducerID >= 0 && req.Epoch < 0:
		return fail(proto.InvalidRequest)
	case req.ProducerID >= 0 && req.Epoch < proto.MaxProducerEpoch:
		return proto.None, &proto.InitProducerResponse{ProducerID: req.ProducerID, Epoch: req.Epoch + 1}
	}
	id, err := s.nextProducerID()
	if err != nil {
		s.log.Error("init producer", "err", err)
		return fail(proto.StorageError)
	}
	return proto.None, &proto.InitProducerResponse{ProducerID: id, Epoch: 0}
}
