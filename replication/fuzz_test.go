package replication

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"google.golang.org/protobuf/proto"

	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/transport/pb"
)

// The fuzz targets of the decoders of untrusted bytes (records and
// receipts) and of MemStore's operations. Run one:
//
//	go test -run='^$' -fuzz='^FuzzRecord$' -fuzztime=5s ./replication/

func recordSeeds(t testing.TB) [][]byte {
	k := testKey(t, 1)
	tomb, _ := SignTombstone(k, []byte("gone"), 7, now+10)
	var out [][]byte
	for _, r := range []*Record{signed(t, k, "name", "value", 3, now+100), tomb, NewImmutable([]byte("content"))} {
		b, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// FuzzRecord: what UnmarshalRecord accepts re-encodes to the same bytes,
// the generated code reads the same fields from it, and validating it
// does not panic.
func FuzzRecord(f *testing.F) {
	for _, b := range recordSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := UnmarshalRecord(b, Limits{})
		if err != nil {
			return
		}
		enc, err := r.Marshal()
		if err != nil || !bytes.Equal(enc, b) {
			t.Fatalf("decoded %s re-encodes to %x (%v), input %x", r, enc, err, b)
		}
		var g pb.Record
		if err := proto.Unmarshal(b, &g); err != nil {
			t.Fatalf("accepted what the generated code refuses: %v", err)
		}
		if !proto.Equal(&g, toPB(r)) {
			t.Fatalf("the generated code reads other fields")
		}
		_ = r.Validate(now, Limits{})
		if r.Key() != r.Key() || r.Digest() == [DigestSize]byte{} {
			t.Fatal("key or digest unstable")
		}
	})
}

// FuzzReceipt: as FuzzRecord, for receipts, and Verify does not panic.
func FuzzReceipt(f *testing.F) {
	rec := signed(f, testKey(f, 1), "n", "v", 4, 0)
	rc, err := SignReceipt(testKey(f, 2), rec, now)
	if err != nil {
		f.Fatal(err)
	}
	b, _ := rc.Marshal()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		rc, err := UnmarshalReceipt(b)
		if err != nil {
			return
		}
		enc, err := rc.Marshal()
		if err != nil || !bytes.Equal(enc, b) {
			t.Fatalf("decoded receipt re-encodes to %x (%v), input %x", enc, err, b)
		}
		var g pb.StoreReceipt
		if err := proto.Unmarshal(b, &g); err != nil || !bytes.Equal(g.Node, rc.Node) || g.Version != rc.Version || g.Stored != rc.Stored {
			t.Fatalf("the generated code disagrees: %v", err)
		}
		_, _ = rc.Verify()
		_ = VerifyReceipt(rc, rc.NodeID(), rec)
	})
}

// FuzzMemStore runs the operations the input spells on a MemStore with a
// small capacity and quota, over a pool of signed records, and checks
// after each that the counts agree with the entries, that every entry's
// record is held, and that ranges come in arc order.
func FuzzMemStore(f *testing.F) {
	owners := []crypto.PrivKey{testKey(f, 3), testKey(f, 4)}
	var pool []*Record
	for i := range 24 {
		pk := owners[i%2]
		var r *Record
		switch {
		case i%8 == 7:
			r = NewImmutable([]byte(fmt.Sprint("object", i)))
		case i%5 == 4:
			r, _ = SignTombstone(pk, []byte(fmt.Sprint(i%6)), uint64(i%4), now+int64(i))
		default:
			r, _ = Sign(pk, []byte(fmt.Sprint(i%6)), make([]byte, 40*i), uint64(i%4), now+int64(i%3)*int64(i))
		}
		pool = append(pool, r)
	}
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
	f.Add([]byte{0, 0, 0, 3, 3, 3, 0x40, 1, 0x80, 2, 0xc0, 0xc1})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 256 {
			return
		}
		s, _ := NewMemStore(Options{Capacity: 3000, OwnerQuota: 1500, TrustSignatures: true})
		clock := int64(now)
		for i := 0; i < len(b); i++ {
			op, arg := b[i]>>6, int(b[i]&63)
			r := pool[arg%len(pool)]
			switch op {
			case 0, 1:
				_, _ = s.Put(clock, r)
			case 2:
				_, _ = s.Delete(r.Key())
			case 3:
				clock += int64(arg)
				_, _ = s.Collect(clock)
			}
			checkStore(t, s, r.Key())
		}
	})
}

func checkStore(t *testing.T, s *MemStore, pivot id.ID) {
	st := s.Stats()
	var n int
	var total int64
	var prev *id.ID
	err := s.Entries(pivot, pivot.U128().Sub(id.U128{Lo: 1}).ID(), func(e Entry) bool {
		n++
		total += int64(e.Size)
		// Arc order from pivot: clockwise distances increase.
		if prev != nil && !id.Clockwise(pivot, *prev).Less(id.Clockwise(pivot, e.Key)) {
			t.Fatalf("entries out of arc order")
		}
		k := e.Key
		prev = &k
		r, ok, err := s.Get(e.Key)
		if !ok || err != nil {
			t.Fatalf("entry %s without record: %v", e.Key, err)
		}
		if re, _ := r.Entry(); re != e {
			t.Fatalf("entry %s differs from its record's", e.Key)
		}
		return true
	})
	if err != nil || n != st.Records || total != st.Bytes || st.Bytes > 3000 {
		t.Fatalf("%d entries of %d bytes; Stats %+v; %v", n, total, st, err)
	}
	for o, used := range st.Owners {
		if used > 1500 || used <= 0 {
			t.Fatalf("owner %x uses %d", o[:4], used)
		}
	}
	var sum Summary
	_ = s.Entries(id.ID{}, MaxID, func(e Entry) bool { sum.Add(e); return true })
	if got, _ := s.Summary(pivot, pivot.U128().Sub(id.U128{Lo: 1}).ID()); got != sum {
		t.Fatal("the whole ring's summary depends on where it starts")
	}
}

// FuzzProtocol: no payload panics the protocol's decoder, and whatever it
// takes encodes back to the same bytes.
func FuzzProtocol(f *testing.F) {
	h := id.Handle{ID: id.ID{7}, Addr: "node"}
	sig := make([]byte, SignatureSize)
	for _, m := range []pmsg{
		{kind: kindPut, req: 1, k: 5, w: 3, record: []byte{1, 2, 3}},
		{kind: kindStore, req: 2, record: []byte{4}},
		{kind: kindStored, req: 3, status: statusOK, key: id.ID{1}, version: 2, stored: 9, sig: sig},
		{kind: kindStored, req: 3, status: statusStale, key: id.ID{1}},
		{kind: kindResult, req: 4, status: statusOK, receipts: []wireReceipt{{node: h, version: 1, stored: 5, sig: sig}}},
		{kind: kindGet, req: 5, r: 3, key: id.ID{2}},
		{kind: kindGet, req: 5, r: 3, key: id.ID{2}, flags: flagStale | flagCache, path: []id.Handle{h, h}},
		{kind: kindFetch, req: 6, key: id.ID{2}, origin: h},
		{kind: kindHave, req: 7, key: id.ID{2}, found: true, record: []byte{9}, origin: h, sig: sig},
		{kind: kindHave, req: 7, key: id.ID{2}, origin: h},
		{kind: kindSync, lo: id.ID{1}, hi: id.ID{9}, count: 4},
		{kind: kindEntries, lo: id.ID{1}, hi: id.ID{9}, reply: true, entries: []entryRef{{key: id.ID{3}, version: 1}}},
		{kind: kindPush, record: []byte{1}},
		{kind: kindStored, req: 3, status: statusFull, key: id.ID{1}},
		{kind: kindResult, req: 4, status: statusQuota},
		{kind: kindDivert, req: 8, record: []byte{1, 2}},
		{kind: kindRelease, key: id.ID{4}, version: 3},
		{kind: kindCached, req: 9, key: id.ID{5}, hops: 2, record: []byte{7}},
		{kind: kindCache, key: id.ID{5}, record: []byte{7}, path: []id.Handle{h}},
		{kind: kindOffer, key: id.ID{6}, origin: h},
		{kind: kindHave, req: 7, key: id.ID{2}, hops: 3, found: true, record: []byte{9}, origin: h},
	} {
		b, err := m.encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decode(b, 1<<20)
		if err != nil {
			return
		}
		again, err := m.encode()
		if err != nil {
			t.Fatalf("decoded %s does not encode: %v", PayloadKind(b), err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("%s: re-encoded %x, read %x", PayloadKind(b), again, b)
		}
	})
}
