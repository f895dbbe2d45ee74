package proto

import "testing"

// The server decodes Produce and Fetch requests into structs it keeps per
// connection: once warm, decoding allocates nothing.
func TestDecodeAllocsProduceFetch(t *testing.T) {
	for _, mt := range dataMsgTypes() {
		if mt.name != "ProduceRequest" && mt.name != "FetchRequest" {
			continue
		}
		body := mt.samples[0].AppendTo(nil)
		m := mt.new()
		if err := m.Decode(body); err != nil {
			t.Fatal(err)
		}
		allocs := testing.AllocsPerRun(100, func() {
			if err := m.Decode(body); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s.Decode: %v allocs per run, want 0", mt.name, allocs)
		}
	}
}

// The server's topic lookup by a []byte name does not allocate.
func TestTopicLookupAllocs(t *testing.T) {
	var r ProduceRequest
	if err := r.Decode(dataMsgTypes()[0].samples[0].AppendTo(nil)); err != nil {
		t.Fatal(err)
	}
	topics := map[string]int{"orders": 1, "payments": 2}
	sum := 0
	allocs := testing.AllocsPerRun(100, func() {
		for i := range r.Topics {
			sum += topics[string(r.Topics[i].Name)]
		}
	})
	if allocs != 0 || sum == 0 {
		t.Fatalf("lookup: %v allocs, sum %d", allocs, sum)
	}
}

// Writing responses into a reused buffer does not allocate.
func TestResponseAppendAllocs(t *testing.T) {
	resp := dataMsgTypes()[1].samples[0].(*ProduceResponse)
	ph := FetchPartitionHeader{Partition: 1, HighWatermark: 10, RecordsLen: 4096}
	buf := make([]byte, 0, 4096)
	allocs := testing.AllocsPerRun(100, func() {
		b := AppendResponse(buf[:0], ResponseHeader{CorrelationID: 1}, resp)
		var size FetchResponseSize
		size.AddTopic([]byte("orders"))
		size.AddPartition(int(ph.RecordsLen))
		b = AppendResponseHeader(b, ResponseHeader{CorrelationID: 2}, size.BodyLen())
		b = AppendFetchResponseStart(b, 1)
		b = AppendFetchResponseTopicHeader(b, []byte("orders"), 1)
		_ = AppendFetchPartitionHeader(b, &ph)
	})
	if allocs != 0 {
		t.Fatalf("%v allocs per run, want 0", allocs)
	}
}
