package replication

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/secure"
	"github.com/pastrynet/pastry/transport/pb"
)

const now = 1_800_000_000

func testKey(t testing.TB, b byte) crypto.PrivKey {
	t.Helper()
	k, err := secure.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{b}, 64)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func signed(t testing.TB, k crypto.PrivKey, name, value string, version uint64, expiry int64) *Record {
	t.Helper()
	r, err := Sign(k, []byte(name), []byte(value), version, expiry)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func toPB(r *Record) *pb.Record {
	return &pb.Record{Kind: pb.RecordKind(r.Kind), Owner: r.Owner, Name: r.Name, Value: r.Value,
		Version: r.Version, Expiry: r.Expiry, Tombstone: r.Tombstone, Signature: r.Signature}
}

func TestRecordRoundTrip(t *testing.T) {
	k := testKey(t, 1)
	tomb, _ := SignTombstone(k, []byte("gone"), 7, now+10)
	for _, r := range []*Record{
		signed(t, k, "name", "value", 3, now+100),
		signed(t, k, "", "", 0, 0),
		tomb,
		NewImmutable([]byte("some content")),
		NewImmutable(nil),
	} {
		if err := r.Validate(now, Limits{}); err != nil {
			t.Fatalf("%s: %v", r, err)
		}
		enc, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		// The published schema is the contract: the generated code
		// encodes the same bytes and decodes them to the same fields.
		gen, err := proto.MarshalOptions{Deterministic: true}.Marshal(toPB(r))
		if err != nil || !bytes.Equal(gen, enc) {
			t.Fatalf("%s: encoding differs from the generated code's (%v)", r, err)
		}
		var back pb.Record
		if err := proto.Unmarshal(enc, &back); err != nil || !proto.Equal(&back, toPB(r)) {
			t.Fatalf("%s: the generated code reads other fields (%v)", r, err)
		}
		got, err := UnmarshalRecord(enc, Limits{})
		if err != nil || !got.Equal(r) {
			t.Fatalf("%s: round trip %v, %v", r, got, err)
		}
		again, _ := got.Marshal()
		if !bytes.Equal(again, enc) {
			t.Fatalf("%s: re-encoding differs", r)
		}
		if err := got.Validate(now, Limits{}); err != nil {
			t.Fatalf("decoded %s: %v", r, err)
		}
	}
}

func TestKeyDerivation(t *testing.T) {
	k := testKey(t, 2)
	r := signed(t, k, "photos/2026", "x", 1, 0)
	pub, _ := k.GetPublic().Raw()
	sum := sha256.Sum256(append(append([]byte(nil), pub...), "photos/2026"...))
	if key := r.Key(); !bytes.Equal(key[:], sum[:16]) {
		t.Fatalf("mutable key %s, want SHA-256(owner ‖ name)[:16] %x", r.Key(), sum[:16])
	}
	im := NewImmutable([]byte("content"))
	sum = sha256.Sum256([]byte("content"))
	if key := im.Key(); !bytes.Equal(key[:], sum[:16]) {
		t.Fatalf("immutable key %s, want SHA-256(content)[:16]", im.Key())
	}
	if err := r.CheckKey(r.Key()); err != nil {
		t.Fatal(err)
	}
	if err := r.CheckKey(im.Key()); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("CheckKey of another key: %v", err)
	}
	// The key a node's identity would sign under: the same owner, other
	// names, other keys.
	if signed(t, k, "a", "", 1, 0).Key() == signed(t, k, "b", "", 1, 0).Key() {
		t.Fatal("two names, one key")
	}
}

func TestValidateRefuses(t *testing.T) {
	k := testKey(t, 3)
	mutate := func(f func(r *Record)) *Record {
		r := signed(t, k, "n", "value", 5, now+100)
		f(r)
		return r
	}
	resign := func(f func(r *Record)) *Record {
		r := mutate(f)
		r.Signature, _ = k.Sign(r.SignedBytes())
		return r
	}
	small := make([]byte, 32)
	small[0] = 1 // the identity point: small order
	cases := []struct {
		name string
		r    *Record
		lim  Limits
		want error
	}{
		{"value changed", mutate(func(r *Record) { r.Value = []byte("other") }), Limits{}, ErrBadSignature},
		{"version changed", mutate(func(r *Record) { r.Version++ }), Limits{}, ErrBadSignature},
		{"expiry changed", mutate(func(r *Record) { r.Expiry++ }), Limits{}, ErrBadSignature},
		{"name changed", mutate(func(r *Record) { r.Name = []byte("m") }), Limits{}, ErrBadSignature},
		{"made a tombstone", mutate(func(r *Record) { r.Value, r.Tombstone = nil, true }), Limits{}, ErrBadSignature},
		{"another owner", mutate(func(r *Record) { r.Owner, _ = testKey(t, 4).GetPublic().Raw() }), Limits{}, ErrBadSignature},
		{"signature flipped", mutate(func(r *Record) { r.Signature[10] ^= 1 }), Limits{}, ErrBadSignature},
		{"short signature", mutate(func(r *Record) { r.Signature = r.Signature[:63] }), Limits{}, ErrMalformed},
		{"short owner", mutate(func(r *Record) { r.Owner = r.Owner[:31] }), Limits{}, ErrMalformed},
		{"zero owner", mutate(func(r *Record) { r.Owner = make([]byte, 32) }), Limits{}, ErrBadKey},
		{"small-order owner", mutate(func(r *Record) { r.Owner = small }), Limits{}, ErrBadKey},
		{"value over the limit", resign(func(r *Record) { r.Value = make([]byte, 101) }), Limits{MaxValue: 100}, ErrTooLarge},
		{"value over 1 MiB", resign(func(r *Record) { r.Value = make([]byte, 1<<20+1) }), Limits{}, ErrTooLarge},
		{"name over the limit", resign(func(r *Record) { r.Name = make([]byte, 11) }), Limits{MaxName: 10}, ErrTooLarge},
		{"expired", resign(func(r *Record) { r.Expiry = now }), Limits{}, ErrExpired},
		{"negative expiry", resign(func(r *Record) { r.Expiry = -1 }), Limits{}, ErrMalformed},
		{"tombstone with a value", resign(func(r *Record) { r.Tombstone = true }), Limits{}, ErrMalformed},
		{"kind 0", resign(func(r *Record) { r.Kind = 0 }), Limits{}, ErrMalformed},
		{"immutable with an owner", &Record{Kind: Immutable, Owner: small, Value: []byte("x")}, Limits{}, ErrMalformed},
		{"immutable with a version", &Record{Kind: Immutable, Version: 1}, Limits{}, ErrMalformed},
		{"immutable over the limit", NewImmutable(make([]byte, 101)), Limits{MaxValue: 100}, ErrTooLarge},
	}
	for _, c := range cases {
		if err := c.r.Validate(now, c.lim); !errors.Is(err, c.want) {
			t.Errorf("%s: Validate = %v, want %v", c.name, err, c.want)
		}
	}
	if err := signed(t, k, "n", "v", 1, 0).Validate(now, Limits{MaxValue: MaxValueLimit + 1}); err == nil {
		t.Error("limits past MaxValueLimit accepted")
	}
	if _, err := Sign(testKey(t, 5), make([]byte, 256), nil, 1, 0); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Sign with a 256-byte name: %v", err)
	}
	rsa, _, _ := crypto.GenerateSecp256k1Key(bytes.NewReader(bytes.Repeat([]byte{9}, 64)))
	if _, err := Sign(rsa, []byte("n"), nil, 1, 0); !errors.Is(err, ErrBadKey) {
		t.Errorf("Sign with a secp256k1 key: %v", err)
	}
}

// tag appends a field's tag.
func tag(b []byte, num protowire.Number, typ protowire.Type) []byte {
	return protowire.AppendTag(b, num, typ)
}

func TestUnmarshalRecordRefuses(t *testing.T) {
	k := testKey(t, 6)
	good, _ := signed(t, k, "n", "value", 5, now+100).Marshal()
	sig := good[len(good)-66:]
	body := good[:len(good)-66] // everything before the signature field
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	kind := []byte{0x08, 0x01}
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"trailing byte", cat(good, []byte{0}), ErrMalformed},
		{"truncated", good[:len(good)-1], ErrMalformed},
		{"unknown field", cat(good, protowire.AppendVarint(tag(nil, 9, protowire.VarintType), 1)), ErrMalformed},
		{"unknown low field", cat(protowire.AppendVarint(tag(nil, 0, protowire.VarintType), 1), good), ErrMalformed},
		{"signature twice", cat(good, sig), ErrMalformed},
		{"out of order", cat(sig, body), ErrMalformed},
		{"kind as bytes", cat(protowire.AppendBytes(tag(nil, 1, protowire.BytesType), []byte{1}), good[2:]), ErrMalformed},
		{"owner as varint", cat(kind, protowire.AppendVarint(tag(nil, 2, protowire.VarintType), 1)), ErrMalformed},
		{"kind 0 present", cat([]byte{0x08, 0x00}, good[2:]), ErrMalformed},
		{"kind 3", cat([]byte{0x08, 0x03}, good[2:]), ErrMalformed},
		{"kind 257", cat([]byte{0x08, 0x81, 0x02}, good[2:]), ErrMalformed},
		{"non-minimal varint", cat([]byte{0x08, 0x81, 0x00}, good[2:]), ErrMalformed},
		{"non-minimal tag", cat([]byte{0x88, 0x00, 0x01}, good[2:]), ErrMalformed},
		{"non-minimal length", cat(kind, []byte{0x12, 0xa0, 0x00}, good[4:]), ErrMalformed},
		{"empty name present", cat(good[:36], []byte{0x1a, 0x00}, good[36:]), ErrMalformed},
		{"tombstone 2", cat(body, []byte{0x38, 0x02}, sig), ErrMalformed},
		{"group wire type", cat(kind, tag(nil, 2, protowire.StartGroupType)), ErrMalformed},
		{"length past the end", cat(kind, []byte{0x12, 0x7f}), ErrMalformed},
		{"no kind", good[2:], ErrMalformed},
		{"immutable with signature", cat([]byte{0x08, 0x02}, sig), ErrMalformed},
		{"too long", make([]byte, DefaultLimits().maxEncoded()+1), ErrTooLarge},
	}
	for _, c := range cases {
		r, err := UnmarshalRecord(c.b, Limits{})
		t.Logf("%s: %v", c.name, err)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: UnmarshalRecord = %v, %v; want %v", c.name, r, err, c.want)
		}
	}
	neg := signed(t, k, "n", "", 1, 0)
	neg.Expiry = -5
	if _, err := UnmarshalRecord(neg.AppendTo(nil), Limits{}); !errors.Is(err, ErrMalformed) {
		t.Errorf("negative expiry: %v", err)
	}
	big := NewImmutable(make([]byte, 200)).AppendTo(nil)
	if _, err := UnmarshalRecord(big, Limits{MaxValue: 100}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("value over the limit: %v", err)
	}
}

func TestSupersedes(t *testing.T) {
	k := testKey(t, 7)
	v1, v2 := signed(t, k, "n", "a", 1, 0), signed(t, k, "n", "b", 2, 0)
	v2b := signed(t, k, "n", "c", 2, 0)
	other := signed(t, k, "m", "a", 3, 0)
	pub, _ := k.GetPublic().Raw()
	squat := NewImmutable(append(pub, 'n'))
	cases := []struct {
		name      string
		old, next *Record
		replace   bool
		want      error
	}{
		{"higher", v1, v2, true, nil},
		{"lower", v2, v1, false, ErrStale},
		{"identical", v2, v2.Clone(), false, nil},
		{"same version, other value", v2, v2b, false, ErrConflict},
		{"other key", v1, other, false, ErrKeyMismatch},
		{"mutable over a squatting object", squat, v1, true, nil},
		{"object over a mutable record", v1, squat, false, ErrConflict},
		{"same object", squat, squat.Clone(), false, nil},
	}
	for _, c := range cases {
		replace, err := Supersedes(c.old, c.next)
		if replace != c.replace || !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%s: Supersedes = %v, %v; want %v, %v", c.name, replace, err, c.replace, c.want)
		}
	}
}

func TestReceipts(t *testing.T) {
	owner, node, stranger := testKey(t, 8), testKey(t, 9), testKey(t, 10)
	rec := signed(t, owner, "n", "v", 4, 0)
	rc, err := SignReceipt(node, rec, now)
	if err != nil {
		t.Fatal(err)
	}
	nodeID, _ := secure.NodeID(node.GetPublic())
	if err := VerifyReceipt(rc, nodeID, rec); err != nil {
		t.Fatalf("VerifyReceipt: %v", err)
	}
	pid, err := rc.PeerID()
	want, _ := peer.IDFromPrivateKey(node)
	if err != nil || pid != want {
		t.Fatalf("PeerID = %s, %v; want %s", pid, err, want)
	}
	if x, _ := secure.NodeIDFromPeer(pid); x != rc.NodeID() {
		t.Fatal("NodeID differs from secure's derivation")
	}
	// Signed through the Endpoint's path (SignedBytes signed with the
	// node's key): the same receipt.
	unsigned, _ := NewReceipt(rc.Node, rec, now)
	unsigned.Signature, _ = node.Sign(unsigned.SignedBytes())
	if !bytes.Equal(unsigned.Signature, rc.Signature) {
		t.Fatal("NewReceipt + Sign differs from SignReceipt")
	}
	enc, err := rc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	gen, _ := proto.MarshalOptions{Deterministic: true}.Marshal(&pb.StoreReceipt{
		Node: rc.Node, Key: rc.Key[:], Version: rc.Version, Digest: rc.Digest[:], Stored: rc.Stored, Signature: rc.Signature})
	if !bytes.Equal(gen, enc) {
		t.Fatal("receipt encoding differs from the generated code's")
	}
	back, err := UnmarshalReceipt(enc)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := back.Marshal(); !bytes.Equal(again, enc) {
		t.Fatal("receipt re-encoding differs")
	}
	strangerID, _ := secure.NodeID(stranger.GetPublic())
	tampered := *back
	tampered.Version++
	forged := *back
	forged.Node, _ = stranger.GetPublic().Raw()
	other := signed(t, owner, "n", "w", 5, 0)
	for _, c := range []struct {
		name string
		err  error
		want error
	}{
		{"another node expected", VerifyReceipt(back, strangerID, rec), ErrWrongNode},
		{"version changed", VerifyReceipt(&tampered, nodeID, rec), ErrBadSignature},
		{"node key swapped", VerifyReceipt(&forged, strangerID, rec), ErrBadSignature},
		{"another record", VerifyReceipt(back, nodeID, other), ErrKeyMismatch},
	} {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, c.err, c.want)
		}
	}
	for _, b := range [][]byte{nil, enc[:len(enc)-1], append(bytes.Clone(enc), 0), enc[18:], make([]byte, MaxReceiptLen+1)} {
		if _, err := UnmarshalReceipt(b); err == nil {
			t.Errorf("UnmarshalReceipt(%x) accepted", b)
		}
	}
}

func TestSummaryHash(t *testing.T) {
	var es []Entry
	for i := range 50 {
		r := NewImmutable([]byte{byte(i)})
		e, _ := r.Entry()
		e.Version = uint64(i) << 40
		es = append(es, e)
	}
	// The hash is the sum modulo 2^256 of the entries' hashes, whatever
	// the order.
	mod := new(big.Int).Lsh(big.NewInt(1), 256)
	want := new(big.Int)
	var fwd, back Summary
	for i, e := range es {
		fwd.Add(e)
		back.Add(es[len(es)-1-i])
		var b []byte
		b = append(b, e.Key[:]...)
		b = append(b, byte(e.Version>>56), byte(e.Version>>48), byte(e.Version>>40), byte(e.Version>>32), byte(e.Version>>24), byte(e.Version>>16), byte(e.Version>>8), byte(e.Version))
		b = append(b, e.Digest[:]...)
		h := sha256.Sum256(b)
		want.Add(want, new(big.Int).SetBytes(h[:]))
		want.Mod(want, mod)
	}
	got := new(big.Int).SetBytes(fwd.Hash[:])
	if got.Cmp(want) != 0 || fwd != back || fwd.Count != 50 {
		t.Fatalf("summary hash %x, want %x; reversed order equal: %v", got, want, fwd == back)
	}
}

func TestRanges(t *testing.T) {
	a, b, c := id.MustParse(strings.Repeat("1", 32)), id.MustParse(strings.Repeat("8", 32)), id.MustParse(strings.Repeat("e", 32))
	if !InRange(a, c, b) || InRange(c, a, b) || !InRange(c, a, MaxID) || !InRange(c, a, id.ID{}) || !InRange(b, b, b) || InRange(b, b, a) {
		t.Fatal("InRange")
	}
	if s := Segments(c, a); len(s) != 2 || s[0] != [2]id.ID{c, MaxID} || s[1] != [2]id.ID{{}, a} {
		t.Fatalf("Segments(c, a) = %v", s)
	}
}
