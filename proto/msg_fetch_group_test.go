package proto

import (
	"bytes"
	"errors"
	"testing"
)

// A group member's fetch carries its group, member id and epoch as
// optional trailing fields; a plain fetch's encoding has none of them and
// decodes with them empty.
func TestFetchRequestGroupFields(t *testing.T) {
	topics := []FetchTopic{{Name: []byte("orders"), Partitions: []FetchPartition{{0, 1000, 1 << 18}}}}
	plain := &FetchRequest{MaxWaitMs: 500, MinBytes: 1, MaxBytes: 1 << 20, Topics: topics}
	member := &FetchRequest{MaxWaitMs: 500, MinBytes: 1, MaxBytes: 1 << 20, Topics: topics,
		Group: []byte("billing"), MemberID: []byte("5f0c2a9e1b7d4c3a"), MemberEpoch: 7}
	pb, mb := plain.AppendTo(nil), member.AppendTo(nil)
	if want := len(pb) + 2 + 7 + 2 + 16 + 4; len(mb) != want {
		t.Fatalf("member fetch is %d bytes, want %d", len(mb), want)
	}
	if !bytes.Equal(mb[:len(pb)], pb) {
		t.Fatal("the group fields are not a trailer of the plain encoding")
	}
	// A reused request forgets the group of the previous decode.
	var got FetchRequest
	if err := got.Decode(mb); err != nil {
		t.Fatal(err)
	}
	if string(got.Group) != "billing" || string(got.MemberID) != "5f0c2a9e1b7d4c3a" || got.MemberEpoch != 7 {
		t.Fatalf("decoded group fields %q %q %d", got.Group, got.MemberID, got.MemberEpoch)
	}
	if err := got.Decode(pb); err != nil {
		t.Fatal(err)
	}
	if got.Group != nil || got.MemberID != nil || got.MemberEpoch != 0 {
		t.Fatalf("plain fetch decoded with group fields %q %q %d", got.Group, got.MemberID, got.MemberEpoch)
	}
	// Cuts inside the trailer are malformed or short, never a plain fetch.
	for n := len(pb) + 1; n < len(mb); n++ {
		err := new(FetchRequest).Decode(mb[:n:n])
		if !errors.Is(err, ErrShortBuffer) && !errors.Is(err, ErrMalformed) {
			t.Fatalf("cut at %d/%d: err = %v", n, len(mb), err)
		}
	}
	empty := append(append([]byte{}, pb...), 0, 0, 0, 0, 0, 0, 0, 0)
	if err := new(FetchRequest).Decode(empty); !errors.Is(err, ErrMalformed) {
		t.Fatalf("empty group name: err = %v", err)
	}
}
