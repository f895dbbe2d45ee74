package proto

import (
	"bytes"
	"errors"
	"testing"
)

func TestRequestHeaderRoundTrip(t *testing.T) {
	h := RequestHeader{API: APIFetch, Version: 0, CorrelationID: 0xDEADBEEF}
	body := []byte("body!")
	frame := AppendRequestHeader([]byte{}, h, len(body))
	frame = append(frame, body...)
	want := []byte{13, 0, 0, 0, 7, 0, 0, 0, 0xEF, 0xBE, 0xAD, 0xDE, 'b', 'o', 'd', 'y', '!'}
	if !bytes.Equal(frame, want) {
		t.Fatalf("frame %x, want %x", frame, want)
	}
	n, ok := FrameLength(frame[:4])
	if !ok || n != len(frame) {
		t.Fatalf("FrameLength = %d %v", n, ok)
	}
	got, gotBody, err := ParseRequestHeader(append(frame, "next frame"...))
	if err != nil || got != h || !bytes.Equal(gotBody, body) || cap(gotBody) != len(body) {
		t.Fatalf("ParseRequestHeader = %+v %q (cap %d) %v", got, gotBody, cap(gotBody), err)
	}
}

func TestResponseHeaderRoundTrip(t *testing.T) {
	h := ResponseHeader{CorrelationID: 9, Error: UnknownTopic}
	frame := AppendResponseHeader(nil, h, 0)
	want := []byte{6, 0, 0, 0, 9, 0, 0, 0, 3, 0}
	if !bytes.Equal(frame, want) {
		t.Fatalf("frame %x, want %x", frame, want)
	}
	got, body, err := ParseResponseHeader(frame)
	if err != nil || got != h || len(body) != 0 {
		t.Fatalf("ParseResponseHeader = %+v %q %v", got, body, err)
	}
}

func TestParseHeaderErrors(t *testing.T) {
	cases := []struct {
		name  string
		frame []byte
		resp  bool
	}{
		{"empty", nil, false},
		{"length only", []byte{8, 0, 0, 0}, false},
		{"length below request header", []byte{7, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0}, false},
		{"length below response header", []byte{5, 0, 0, 0, 1, 0, 0, 0, 0}, true},
		{"body missing", []byte{10, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1}, false},
		{"response body missing", []byte{7, 0, 0, 0, 1, 0, 0, 0, 0, 0}, true},
	}
	for _, c := range cases {
		var err error
		if c.resp {
			_, _, err = ParseResponseHeader(c.frame)
		} else {
			_, _, err = ParseRequestHeader(c.frame)
		}
		if !errors.Is(err, ErrBadFrame) {
			t.Errorf("%s: err = %v, want ErrBadFrame", c.name, err)
		}
	}
}

func TestFrameLengthLimits(t *testing.T) {
	if _, ok := FrameLength([]byte{1, 2, 3}); ok {
		t.Fatal("FrameLength ok on 3 bytes")
	}
	n, _ := FrameLength([]byte{0xFF, 0xFF, 0xFF, 0xFF})
	if n != 0xFFFFFFFF+4 {
		t.Fatalf("FrameLength(max) = %d", n)
	}
	if err := CheckFrameLength(n, DefaultMaxFrameBytes); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("CheckFrameLength(max) = %v", err)
	}
	if err := CheckFrameLength(DefaultMaxFrameBytes+4, DefaultMaxFrameBytes); err != nil {
		t.Fatalf("CheckFrameLength(limit) = %v", err)
	}
	if err := CheckFrameLength(DefaultMaxFrameBytes+5, DefaultMaxFrameBytes); err == nil {
		t.Fatal("CheckFrameLength(limit+1) = nil")
	}
}

func TestAppendRequestPatchesLength(t *testing.T) {
	req := &DeleteTopicRequest{Name: "orders"}
	frame := AppendRequest([]byte("prefix"), 5, req)[len("prefix"):]
	h, body, err := ParseRequestHeader(frame)
	if err != nil || h != (RequestHeader{API: APIDeleteTopic, CorrelationID: 5}) {
		t.Fatalf("%+v %v", h, err)
	}
	if n, _ := FrameLength(frame); n != len(frame) {
		t.Fatalf("length field says %d, frame is %d", n, len(frame))
	}
	var got DeleteTopicRequest
	if err := got.Decode(body); err != nil || got != *req {
		t.Fatalf("%+v %v", got, err)
	}
	resp := AppendResponse(nil, ResponseHeader{CorrelationID: 5, Error: ServerShuttingDown}, nil)
	if rh, body, err := ParseResponseHeader(resp); err != nil || rh.Error != ServerShuttingDown || len(body) != 0 {
		t.Fatalf("%+v %q %v", rh, body, err)
	}
}

func TestAPIKeys(t *testing.T) {
	for k := APIHello; k <= APIBrokerHeartbeat; k++ {
		if !k.Supports(0) || k.Supports(1) || k.String() == "" || k.String()[:4] == "API_" {
			t.Errorf("API %d: name %q, supports v0 %v", k, k, k.Supports(0))
		}
	}
	for _, k := range []APIKey{0, maxAPIKey + 1, 0xFFFF} {
		if k.Supports(0) || k.String() != "API_"+itoa(int(k)) {
			t.Errorf("unknown API %d: %q supported %v", k, k, k.Supports(0))
		}
	}
}

func itoa(n int) string { return string(appendInt(nil, n)) }

func appendInt(dst []byte, n int) []byte {
	if n >= 10 {
		dst = appendInt(dst, n/10)
	}
	return append(dst, byte('0'+n%10))
}

func TestNegotiateVersion(t *testing.T) {
	cases := []struct {
		lo, hi uint16
		v      uint16
		ok     bool
	}{
		{1, 1, 1, true}, {0, 5, 1, true}, {2, 5, 0, false}, {0, 0, 0, false},
	}
	for _, c := range cases {
		v, ok := NegotiateVersion(c.lo, c.hi)
		if v != c.v || ok != c.ok {
			t.Errorf("NegotiateVersion(%d, %d) = %d %v", c.lo, c.hi, v, ok)
		}
	}
}
