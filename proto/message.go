package proto

// Message is the body of a request or a response. AppendTo appends the
// encoded body to dst; Decode overwrites the message with the body in b,
// reusing the message's slices, and aliases b for byte fields.
type Message interface {
	AppendTo(dst []byte) []byte
	Decode(b []byte) error
}

// Request is a request body that knows its API.
type Request interface {
	Message
	APIKey() APIKey
}

// ExpectsResponse reports whether the server answers req: everything but a
// Produce with acks 0 and the one-way RaftMessages gets a response.
func ExpectsResponse(req Request) bool {
	switch r := req.(type) {
	case *ProduceRequest:
		return r.Acks != AcksNone
	case *RaftMessagesRequest:
		return false
	}
	return true
}

// AppendRequest appends a whole request frame (version 0) carrying req.
func AppendRequest(dst []byte, correlationID uint32, req Request) []byte {
	start := len(dst)
	dst = AppendRequestHeader(dst, RequestHeader{API: req.APIKey(), CorrelationID: correlationID}, 0)
	dst = req.AppendTo(dst)
	PatchFrameLength(dst[start:])
	return dst
}

// AppendResponse appends a whole response frame carrying resp; a nil resp
// gives an empty body (for a header error).
func AppendResponse(dst []byte, h ResponseHeader, resp Message) []byte {
	start := len(dst)
	dst = AppendResponseHeader(dst, h, 0)
	if resp != nil {
		dst = resp.AppendTo(dst)
	}
	PatchFrameLength(dst[start:])
	return dst
}
