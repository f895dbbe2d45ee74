package proto

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// APIKey identifies a request type. The numbers never change.
type APIKey uint16

// API keys; never renumber.
const (
	APIHello         APIKey = 1
	APIMetadata      APIKey = 2
	APICreateTopic   APIKey = 3
	APIDeleteTopic   APIKey = 4
	APIDescribeTopic APIKey = 5
	APIProduce       APIKey = 6
	APIFetch         APIKey = 7
	APIListOffsets   APIKey = 8
	APIOffsetCommit  APIKey = 9
	APIOffsetFetch   APIKey = 10
	APIListGroups    APIKey = 11
	APIAlterTopic    APIKey = 12
	APIAddPartitions APIKey = 13
	APIClusterStatus APIKey = 14
	// Internal to the cluster: nodes send them to each other.
	APIRaftMessages    APIKey = 15
	APIBrokerHeartbeat APIKey = 16
	APIInitProducer    APIKey = 20
	// Consumer groups (27 reserved).
	APIJoinGroup     APIKey = 21
	APIHeartbeat     APIKey = 22
	APILeaveGroup    APIKey = 23
	APIDescribeGroup APIKey = 24
	APIDeleteGroup   APIKey = 25
	APIResetOffsets  APIKey = 26
	// Replication, internal to the cluster (29 reserved).
	APIReplicaFetch APIKey = 28

	maxAPIKey = APIReplicaFetch
)

var apiNames = [...]string{
	APIHello:         "Hello",
	APIMetadata:      "Metadata",
	APICreateTopic:   "CreateTopic",
	APIDeleteTopic:   "DeleteTopic",
	APIDescribeTopic: "DescribeTopic",
	APIProduce:       "Produce",
	APIFetch:         "Fetch",
	APIListOffsets:   "ListOffsets",
	APIOffsetCommit:  "OffsetCommit",
	APIOffsetFetch:   "OffsetFetch",
	APIListGroups:    "ListGroups",
	APIAlterTopic:    "AlterTopic",
	APIAddPartitions: "AddPartitions",
	APIClusterStatus: "ClusterStatus",

	APIRaftMessages:    "RaftMessages",
	APIBrokerHeartbeat: "BrokerHeartbeat",
	APIInitProducer:    "InitProducer",
	APIJoinGroup:       "JoinGroup",
	APIHeartbeat:       "Heartbeat",
	APILeaveGroup:      "LeaveGroup",
	APIDescribeGroup:   "DescribeGroup",
	APIDeleteGroup:     "DeleteGroup",
	APIResetOffsets:    "ResetOffsets",
	APIReplicaFetch:    "ReplicaFetch",
}

// String is the API's name, e.g. "Produce".
func (k APIKey) String() string {
	if !k.known() {
		return "API_" + strconv.Itoa(int(k))
	}
	return apiNames[k]
}

// known reports whether k is an API of this package (the numbers have
// gaps: ranges are reserved per area).
func (k APIKey) known() bool { return k != 0 && k <= maxAPIKey && apiNames[k] != "" }

// MaxVersion is the highest version of the API this package encodes, and
// ok is false for an API it does not know. Every API is at version 0.
func (k APIKey) MaxVersion() (v uint16, ok bool) { return 0, k.known() }

// Supports reports whether this package encodes version v of the API.
func (k APIKey) Supports(v uint16) bool {
	maxV, ok := k.MaxVersion()
	return ok && v <= maxV
}

// ProtocolVersion is the connection-level protocol version a client offers
// in Hello; a server answers with the highest version both sides support.
const ProtocolVersion uint16 = 1

// NegotiateVersion picks the highest protocol version in [clientMin,
// clientMax] that this package supports; ok is false if there is none.
func NegotiateVersion(clientMin, clientMax uint16) (v uint16, ok bool) {
	if clientMin > ProtocolVersion || clientMax < ProtocolVersion {
		return 0, false
	}
	return ProtocolVersion, true
}

// Frame sizes. These are part of the wire format: never change them.
const (
	// FrameLengthSize is the size of the length field that starts a frame.
	FrameLengthSize = 4
	// RequestHeaderSize is the size of a request header, length included.
	RequestHeaderSize = 12
	// ResponseHeaderSize is the size of a response header, length included.
	ResponseHeaderSize = 10
	// DefaultMaxFrameBytes is the default server max_frame_bytes: a frame
	// whose length field exceeds it closes the connection.
	DefaultMaxFrameBytes = 16 << 20
)

// Frame errors.
var (
	ErrBadFrame      = errors.New("proto: malformed frame")
	ErrFrameTooLarge = errors.New("proto: frame too large")
)

// RequestHeader is the fixed start of a request frame.
type RequestHeader struct {
	API           APIKey
	Version       uint16
	CorrelationID uint32
}

// ResponseHeader is the fixed start of a response frame.
type ResponseHeader struct {
	CorrelationID uint32
	Error         ErrorCode
}

// ConnErrorID is the correlation id of a connection error: a response
// frame with an empty body that the server sends unasked before closing the
// connection (TOO_MANY_CONNECTIONS). Clients never use it for a request.
// Never change it.
const ConnErrorID uint32 = 0

// FrameLength reports the total size of the frame that starts at b, length
// field included, once b holds the 4-byte length field (ok is false
// before). The caller compares n-FrameLengthSize with its max_frame_bytes
// before buffering the rest.
func FrameLength(b []byte) (n int, ok bool) {
	if len(b) < FrameLengthSize {
		return 0, false
	}
	l := uint64(binary.LittleEndian.Uint32(b))
	if l > uint64(math.MaxInt-FrameLengthSize) {
		return math.MaxInt, true // only reachable where int is 32 bits
	}
	return int(l) + FrameLengthSize, true
}

// CheckFrameLength returns ErrFrameTooLarge when the frame of total size n
// (as FrameLength returns it) has a length field above maxFrameBytes.
func CheckFrameLength(n, maxFrameBytes int) error {
	if n-FrameLengthSize > maxFrameBytes {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n-FrameLengthSize, maxFrameBytes)
	}
	return nil
}

// AppendRequestHeader appends a request header whose length field covers
// bodyLen body bytes. When the body length is not known in advance, pass 0
// and call PatchFrameLength once the body is appended.
func AppendRequestHeader(dst []byte, h RequestHeader, bodyLen int) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, frameLen(RequestHeaderSize, bodyLen))
	dst = binary.LittleEndian.AppendUint16(dst, uint16(h.API))
	dst = binary.LittleEndian.AppendUint16(dst, h.Version)
	return binary.LittleEndian.AppendUint32(dst, h.CorrelationID)
}

// AppendResponseHeader appends a response header whose length field covers
// bodyLen body bytes (see PatchFrameLength).
func AppendResponseHeader(dst []byte, h ResponseHeader, bodyLen int) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, frameLen(ResponseHeaderSize, bodyLen))
	dst = binary.LittleEndian.AppendUint32(dst, h.CorrelationID)
	return binary.LittleEndian.AppendUint16(dst, uint16(h.Error))
}

func frameLen(headerSize, bodyLen int) uint32 {
	n := uint64(headerSize-FrameLengthSize) + uint64(bodyLen)
	if bodyLen < 0 || n > math.MaxUint32 {
		panic(fmt.Sprintf("BUG: proto: frame body length %d out of range", bodyLen))
	}
	return uint32(n)
}

// PatchFrameLength sets the length field of frame, which starts with a
// header and ends with its body, to len(frame)-FrameLengthSize.
func PatchFrameLength(frame []byte) {
	if len(frame) < FrameLengthSize || uint64(len(frame)) > math.MaxUint32 {
		panic(fmt.Sprintf("BUG: proto: PatchFrameLength on %d bytes", len(frame)))
	}
	binary.LittleEndian.PutUint32(frame, uint32(len(frame)-FrameLengthSize))
}

// ParseRequestHeader decodes the request frame at the start of frame and
// returns its header and body (aliasing frame). frame must hold the whole
// frame (see FrameLength); bytes after it are ignored.
func ParseRequestHeader(frame []byte) (h RequestHeader, body []byte, err error) {
	body, err = frameBody(frame, RequestHeaderSize)
	if err != nil {
		return h, nil, err
	}
	h.API = APIKey(binary.LittleEndian.Uint16(frame[4:]))
	h.Version = binary.LittleEndian.Uint16(frame[6:])
	h.CorrelationID = binary.LittleEndian.Uint32(frame[8:])
	return h, body, nil
}

// ParseResponseHeader decodes the response frame at the start of frame and
// returns its header and body (aliasing frame).
func ParseResponseHeader(frame []byte) (h ResponseHeader, body []byte, err error) {
	body, err = frameBody(frame, ResponseHeaderSize)
	if err != nil {
		return h, nil, err
	}
	h.CorrelationID = binary.LittleEndian.Uint32(frame[4:])
	h.Error = ErrorCode(binary.LittleEndian.Uint16(frame[8:]))
	return h, body, nil
}

func frameBody(frame []byte, headerSize int) ([]byte, error) {
	n, ok := FrameLength(frame)
	switch {
	case !ok:
		return nil, fmt.Errorf("%w: %d bytes", ErrBadFrame, len(frame))
	case n < headerSize:
		return nil, fmt.Errorf("%w: length %d below the header size", ErrBadFrame, n-FrameLengthSize)
	case n > len(frame):
		return nil, fmt.Errorf("%w: length %d but %d bytes present", ErrBadFrame, n-FrameLengthSize, len(frame)-FrameLengthSize)
	}
	return frame[headerSize:n:n], nil
}
