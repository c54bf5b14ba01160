package replication

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
)

// The replication protocol's payloads (PAST; big-endian). A record is its
// codec's encoding (Record.Marshal), length-prefixed (u32); a handle is
// [id 16][address length u8][address].
//
//	put:     [1][request u64][k u8][w u8][record]                   routed to the key
//	store:   [2][request u64][record]                               root -> replica (and handoffs)
//	stored:  [3][request u64][status u8][key 16][version u64][digest 32][stored i64][signature 64]
//	result:  [4][request u64][status u8][count u8][receipts: handle, version u64, digest 32, stored i64, signature 64]
//	get:     [5][request u64][r u8][key 16][flags u8][count u8][handles: the route so far]
//	                                                                routed to the key; flags: 1 stale-ok, 2 cache along the route
//	fetch:   [6][request u64][key 16][origin handle]                root -> replica (and pointer -> diverted copy)
//	have:    [7][request u64][key 16][hops u8][found u8][record, if found][replica handle][signed u8][signature 64, if signed]
//	                                                                replica -> origin, routed when not connected
//	sync:    [8][lo 16][hi 16][count u32][hash 32]                  anti-entropy
//	entries: [9][lo 16][hi 16][reply u8][count u16][key 16, version u64, digest 32 each]
//	push:    [10][record]                                           a copy for the receiver to hold
//	divert:  [11][request u64][record]                              full replica -> leaf-set neighbour (answered by stored)
//	release: [12][key 16][version u64]                              pointer holder -> diverted copy's holder: drop it
//	cached:  [13][request u64][key 16][hops u8][record]             a node on a read's route -> origin, from its cache
//	cache:   [14][key 16][record][count u8][handles]                root -> the read's route, backwards: a copy to cache
//	offer:   [15][key 16][to handle]                                pointer holder -> diverted copy's holder: push it to a replica
//
// A decoder takes exactly these: anything else is ErrMalformed.
const (
	kindPut = iota + 1
	kindStore
	kindStored
	kindResult
	kindGet
	kindFetch
	kindHave
	kindSync
	kindEntries
	kindPush
	kindDivert
	kindRelease
	kindCached
	kindCache
	kindOffer
	kindCount
)

var kindNames = [...]string{"invalid", "put", "store", "stored", "result", "get", "fetch", "have", "sync", "entries", "push",
	"divert", "release", "cached", "cache", "offer"}

// Status of a store or a write.
const (
	statusOK       = 0
	statusStale    = 1 // a higher version is held
	statusConflict = 2 // another record with this version is held
	statusRefused  = 3 // invalid, over capacity or quota, or not this node's range
	statusQuorum   = 4 // fewer than W receipts in time
	statusFull     = 5 // no space here nor on a leaf-set neighbour to divert to
	statusQuota    = 6 // the owner's quota here would be exceeded
	maxStatus      = statusQuota
)

// Get flags.
const (
	flagStale = 1 // the caller accepts a cached, possibly stale, mutable record
	flagCache = 2 // the nodes on the route record themselves, and the root sends them a copy to cache
	allFlags  = flagStale | flagCache
)

// maxPath bounds the route a get records.
const maxPath = 32

// maxEntries bounds an entries message (and so one anti-entropy batch).
const maxEntries = 512

// errWire: a payload that is not one of the protocol's messages.
var errWire = errors.New("replication: malformed protocol message")

// Kind names the kind of a replication payload, or "invalid".
func PayloadKind(b []byte) string {
	if len(b) == 0 || int(b[0]) >= len(kindNames) {
		return kindNames[0]
	}
	return kindNames[b[0]]
}

// wireReceipt is a replica's signed word, as the protocol carries it: the
// node is the handle it came from (checked with Endpoint.Verify).
type wireReceipt struct {
	node    id.Handle
	version uint64
	digest  [DigestSize]byte
	stored  int64
	sig     []byte
}

type entryRef struct {
	key     id.ID
	version uint64
	digest  [DigestSize]byte
}

// pmsg is any one of the protocol's messages.
type pmsg struct {
	kind     uint8
	req      uint64
	k, w, r  uint8
	record   []byte // encoded
	status   uint8
	key      id.ID
	version  uint64
	digest   [DigestSize]byte
	stored   int64
	sig      []byte
	receipts []wireReceipt
	origin   id.Handle
	found    bool
	lo, hi   id.ID
	count    uint32
	hash     [32]byte
	reply    bool
	entries  []entryRef
	flags    uint8
	hops     uint8
	path     []id.Handle
}

func putRecord(b, rec []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(rec)))
	return append(b, rec...)
}

func (m *pmsg) encode() ([]byte, error) {
	if len(m.origin.Addr) > 255 || len(m.receipts) > 255 || len(m.entries) > maxEntries || len(m.path) > maxPath || m.flags&^allFlags != 0 {
		return nil, fmt.Errorf("replication: %s message over its bounds", kindNames[min(int(m.kind), len(kindNames)-1)])
	}
	for _, h := range m.path {
		if len(h.Addr) > 255 {
			return nil, errors.New("replication: malformed route")
		}
	}
	for _, rc := range m.receipts {
		if len(rc.node.Addr) > 255 || len(rc.sig) != SignatureSize {
			return nil, errors.New("replication: malformed receipt")
		}
	}
	if m.kind == kindStored && (m.status == statusOK) != (len(m.sig) == SignatureSize) {
		return nil, errors.New("replication: a stored message is signed exactly when it says ok")
	}
	if len(m.sig) != 0 && len(m.sig) != SignatureSize {
		return nil, errors.New("replication: malformed signature")
	}
	b := make([]byte, 0, 64+len(m.record))
	b = append(b, m.kind)
	switch m.kind {
	case kindPut:
		b = binary.BigEndian.AppendUint64(b, m.req)
		b = append(b, m.k, m.w)
		b = putRecord(b, m.record)
	case kindStore:
		b = binary.BigEndian.AppendUint64(b, m.req)
		b = putRecord(b, m.record)
	case kindStored:
		b = binary.BigEndian.AppendUint64(b, m.req)
		b = append(b, m.status)
		b = append(b, m.key[:]...)
		b = binary.BigEndian.AppendUint64(b, m.version)
		b = append(b, m.digest[:]...)
		b = binary.BigEndian.AppendUint64(b, uint64(m.stored))
		b = append(b, m.sig...)
	case kindResult:
		b = binary.BigEndian.AppendUint64(b, m.req)
		b = append(b, m.status, byte(len(m.receipts)))
		for _, rc := range m.receipts {
			b = core.AppendHandle(b, rc.node)
			b = binary.BigEndian.AppendUint64(b, rc.version)
			b = append(b, rc.digest[:]...)
			b = binary.BigEndian.AppendUint64(b, uint64(rc.stored))
			b = append(b, rc.sig...)
		}
	case kindGet:
		b = binary.BigEndian.AppendUint64(b, m.req)
		b = append(b, m.r)
		b = append(b, m.key[:]...)
		b = append(b, m.flags)
		b = appendPath(b, m.path)
	case kindFetch:
		b = binary.BigEndian.AppendUint64(b, m.req)
		b = append(b, m.key[:]...)
		b = core.AppendHandle(b, m.origin)
	case kindHave:
		b = binary.BigEndian.AppendUint64(b, m.req)
		b = append(b, m.key[:]...)
		b = append(b, m.hops)
		if m.found {
			b = append(b, 1)
			b = putRecord(b, m.record)
		} else {
			b = append(b, 0)
		}
		b = core.AppendHandle(b, m.origin)
		if len(m.sig) == SignatureSize {
			b = append(b, 1)
			b = append(b, m.sig...)
		} else {
			b = append(b, 0)
		}
	case kindSync:
		b = append(b, m.lo[:]...)
		b = append(b, m.hi[:]...)
		b = binary.BigEndian.AppendUint32(b, m.count)
		b = append(b, m.hash[:]...)
	case kindEntries:
		b = append(b, m.lo[:]...)
		b = append(b, m.hi[:]...)
		r := byte(0)
		if m.reply {
			r = 1
		}
		b = append(b, r)
		b = binary.BigEndian.AppendUint16(b, uint16(len(m.entries)))
		for _, e := range m.entries {
			b = append(b, e.key[:]...)
			b = binary.BigEndian.AppendUint64(b, e.version)
			b = append(b, e.digest[:]...)
		}
	case kindPush:
		b = putRecord(b, m.record)
	case kindDivert:
		b = binary.BigEndian.AppendUint64(b, m.req)
		b = putRecord(b, m.record)
	case kindRelease:
		b = append(b, m.key[:]...)
		b = binary.BigEndian.AppendUint64(b, m.version)
	case kindCached:
		b = binary.BigEndian.AppendUint64(b, m.req)
		b = append(b, m.key[:]...)
		b = append(b, m.hops)
		b = putRecord(b, m.record)
	case kindCache:
		b = append(b, m.key[:]...)
		b = putRecord(b, m.record)
		b = appendPath(b, m.path)
	case kindOffer:
		b = append(b, m.key[:]...)
		b = core.AppendHandle(b, m.origin)
	default:
		return nil, fmt.Errorf("replication: encode kind %d", m.kind)
	}
	return b, nil
}

func appendPath(b []byte, path []id.Handle) []byte {
	b = append(b, byte(len(path)))
	for _, h := range path {
		b = core.AppendHandle(b, h)
	}
	return b
}

func readPath(r *core.PayloadReader) []id.Handle {
	n := int(r.U8())
	if n > maxPath {
		r.Fail()
		return nil
	}
	var path []id.Handle
	for i := 0; i < n && !r.Bad(); i++ {
		path = append(path, r.Handle())
	}
	return path
}

func readDigest(r *core.PayloadReader) (d [DigestSize]byte) {
	copy(d[:], r.Take(DigestSize))
	return d
}

func readRecord(r *core.PayloadReader, max int) []byte {
	n := r.U32()
	if int64(n) > int64(max) {
		r.Fail()
		return nil
	}
	return append([]byte(nil), r.Take(int(n))...)
}

// decode reads one message; maxRecord bounds an encoded record.
func decode(b []byte, maxRecord int) (pmsg, error) {
	var m pmsg
	r := core.NewPayloadReader(b)
	m.kind = r.U8()
	switch m.kind {
	case kindPut:
		m.req = r.U64()
		m.k, m.w = r.U8(), r.U8()
		m.record = readRecord(r, maxRecord)
	case kindStore:
		m.req = r.U64()
		m.record = readRecord(r, maxRecord)
	case kindStored:
		m.req = r.U64()
		m.status = r.U8()
		m.key = r.ID()
		m.version = r.U64()
		m.digest = readDigest(r)
		m.stored = int64(r.U64())
		if m.status == statusOK {
			m.sig = append([]byte(nil), r.Take(SignatureSize)...)
		} else if m.status > maxStatus {
			r.Fail()
		}
	case kindResult:
		m.req = r.U64()
		m.status = r.U8()
		n := int(r.U8())
		if m.status > maxStatus {
			r.Fail()
		}
		for i := 0; i < n && !r.Bad(); i++ {
			var rc wireReceipt
			rc.node = r.Handle()
			rc.version = r.U64()
			rc.digest = readDigest(r)
			rc.stored = int64(r.U64())
			rc.sig = append([]byte(nil), r.Take(SignatureSize)...)
			m.receipts = append(m.receipts, rc)
		}
	case kindGet:
		m.req = r.U64()
		m.r = r.U8()
		m.key = r.ID()
		if m.flags = r.U8(); m.flags&^allFlags != 0 {
			r.Fail()
		}
		m.path = readPath(r)
	case kindFetch:
		m.req = r.U64()
		m.key = r.ID()
		m.origin = r.Handle()
	case kindHave:
		m.req = r.U64()
		m.key = r.ID()
		m.hops = r.U8()
		if m.found = r.Bool(); m.found {
			m.record = readRecord(r, maxRecord)
		}
		m.origin = r.Handle() // the replica
		if r.Bool() {
			m.sig = append([]byte(nil), r.Take(SignatureSize)...)
		}
	case kindSync:
		m.lo, m.hi = r.ID(), r.ID()
		m.count = r.U32()
		copy(m.hash[:], r.Take(32))
	case kindEntries:
		m.lo, m.hi = r.ID(), r.ID()
		m.reply = r.Bool()
		n := int(r.U16())
		if n > maxEntries || n*(id.Len+8+DigestSize) != r.Len() {
			r.Fail()
			break
		}
		m.entries = make([]entryRef, n)
		for i := range m.entries {
			m.entries[i] = entryRef{key: r.ID(), version: r.U64(), digest: readDigest(r)}
		}
	case kindPush:
		m.record = readRecord(r, maxRecord)
	case kindDivert:
		m.req = r.U64()
		m.record = readRecord(r, maxRecord)
	case kindRelease:
		m.key = r.ID()
		m.version = r.U64()
	case kindCached:
		m.req = r.U64()
		m.key = r.ID()
		m.hops = r.U8()
		m.record = readRecord(r, maxRecord)
	case kindCache:
		m.key = r.ID()
		m.record = readRecord(r, maxRecord)
		m.path = readPath(r)
	case kindOffer:
		m.key = r.ID()
		m.origin = r.Handle()
	default:
		r.Fail()
	}
	if r.Bad() || r.Len() != 0 {
		return pmsg{}, fmt.Errorf("%w (%s, %d bytes)", errWire, PayloadKind(b), len(b))
	}
	return m, nil
}
