package multicast

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
)

// The wire format of Scribe's payloads (big-endian; a handle is
// [id 16][address length u8][address]):
//
//	subscribe:      [1][topic 16]
//	ack:            [2][topic 16][depth u16]
//	unsubscribe:    [3][topic 16]
//	drop:           [4][topic 16][count u8][handles]           the siblings to join through
//	publish:        [5][topic 16][flags u8][publisher 16][seq u64][signature 64, if flagSigned][data]
//	data:           [6][topic 16][publisher 16][seq u64][depth u16][flags u8][signature 64, if flagSigned][data]
//	heartbeat:      [7][topic 16][count u16][topics 16 each]   the first topic, then the others
//	root-is:        [8][topic 16][seq u64]
//	not-root:       [9][topic 16]
//	root-state:     [10][topic 16][count u8][handles]          the root's children
//	anycast:        [11][topic 16][request u64][origin handle][count u8][visited ids][count u8][stack handles][payload]
//	anycast-result: [12][topic 16][request u64][found u8][at handle]
//
// A decoder takes exactly these and nothing else: a payload with bytes
// left over, a count past the bytes, an unknown kind or a flag it does not
// know is ErrMalformed.
const (
	kindSubscribe = iota + 1
	kindAck
	kindUnsubscribe
	kindDrop
	kindPublish
	kindData
	kindHeartbeat
	kindRootIs
	kindNotRoot
	kindRootState
	kindAnycast
	kindAnycastResult
	kindCount
)

var kindNames = [...]string{"invalid", "subscribe", "ack", "unsubscribe", "drop", "publish", "data",
	"heartbeat", "root-is", "not-root", "root-state", "anycast", "anycast-result"}

// ErrMalformed: a payload that is not one of Scribe's messages.
var ErrMalformed = errors.New("multicast: malformed message")

// Flags of a publish and of data. flagWantRoot on a publish asks the
// root to answer with root-is; flagSigned says the publisher's signature
// follows (SignedPayload).
const (
	flagWantRoot = 1
	flagSigned   = 2
)

// sigLen is an Ed25519 signature's length.
const sigLen = 64

// Bounds of a message's lists (each has a count byte).
const (
	maxHandles = 255
	// MaxHeartbeatTopics is the most topics one heartbeat names.
	MaxHeartbeatTopics = 1024
)

// msg is any one of Scribe's messages; which fields matter depends on
// kind.
type msg struct {
	kind      uint8
	topic     id.ID
	depth     uint16
	flags     uint8
	publisher id.ID
	seq       uint64 // publish, data, root-is; the request of anycast
	data      []byte // publish and data: the content; anycast: the payload
	sig       []byte // publish and data with flagSigned
	handles   []id.Handle
	topics    []id.ID // heartbeat: topics after the first
	origin    id.Handle
	visited   []id.ID
	found     bool
}

func (m *msg) String() string {
	k := "invalid"
	if int(m.kind) < len(kindNames) {
		k = kindNames[m.kind]
	}
	return fmt.Sprintf("%s %s", k, m.topic.Short())
}

func appendHandles(b []byte, hs []id.Handle) []byte {
	b = append(b, byte(len(hs)))
	for _, h := range hs {
		b = core.AppendHandle(b, h)
	}
	return b
}

// encode returns m's wire form; it fails on a list or address too long
// for its count byte.
func (m *msg) encode() ([]byte, error) {
	for _, hs := range [][]id.Handle{m.handles, {m.origin}} {
		for _, h := range hs {
			if len(h.Addr) > 255 {
				return nil, fmt.Errorf("multicast: address of %s is %d bytes, at most 255", h, len(h.Addr))
			}
		}
	}
	if len(m.handles) > maxHandles || len(m.visited) > maxHandles || len(m.topics) >= MaxHeartbeatTopics {
		return nil, fmt.Errorf("multicast: %s: list too long", m)
	}
	if (m.flags&flagSigned != 0) != (len(m.sig) == sigLen) || len(m.sig) != 0 && len(m.sig) != sigLen {
		return nil, fmt.Errorf("multicast: %s: signature flag and signature disagree", m)
	}
	b := make([]byte, 0, 1+id.Len+32+len(m.data))
	b = append(b, m.kind)
	b = append(b, m.topic[:]...)
	switch m.kind {
	case kindSubscribe, kindUnsubscribe, kindNotRoot:
	case kindAck:
		b = binary.BigEndian.AppendUint16(b, m.depth)
	case kindDrop, kindRootState:
		b = appendHandles(b, m.handles)
	case kindPublish:
		b = append(b, m.flags)
		b = append(b, m.publisher[:]...)
		b = binary.BigEndian.AppendUint64(b, m.seq)
		b = append(b, m.sig...)
		b = append(b, m.data...)
	case kindData:
		b = append(b, m.publisher[:]...)
		b = binary.BigEndian.AppendUint64(b, m.seq)
		b = binary.BigEndian.AppendUint16(b, m.depth)
		b = append(b, m.flags)
		b = append(b, m.sig...)
		b = append(b, m.data...)
	case kindHeartbeat:
		b = binary.BigEndian.AppendUint16(b, uint16(len(m.topics)))
		for _, t := range m.topics {
			b = append(b, t[:]...)
		}
	case kindRootIs:
		b = binary.BigEndian.AppendUint64(b, m.seq)
	case kindAnycast:
		b = binary.BigEndian.AppendUint64(b, m.seq)
		b = core.AppendHandle(b, m.origin)
		b = append(b, byte(len(m.visited)))
		for _, v := range m.visited {
			b = append(b, v[:]...)
		}
		b = appendHandles(b, m.handles)
		b = append(b, m.data...)
	case kindAnycastResult:
		b = binary.BigEndian.AppendUint64(b, m.seq)
		f := byte(0)
		if m.found {
			f = 1
		}
		b = append(b, f)
		b = core.AppendHandle(b, m.origin)
	default:
		return nil, fmt.Errorf("multicast: encode kind %d", m.kind)
	}
	return b, nil
}

func readHandles(r *core.PayloadReader) []id.Handle {
	n := int(r.U8())
	if n == 0 || r.Bad() {
		return nil
	}
	hs := make([]id.Handle, 0, min(n, r.Len()/(id.Len+2)+1))
	for range n {
		if r.Bad() {
			return nil
		}
		hs = append(hs, r.Handle())
	}
	return hs
}

// signature reads a signature if flags say one follows.
func readSignature(r *core.PayloadReader, flags uint8) []byte {
	if flags&flagSigned == 0 {
		return nil
	}
	return append([]byte(nil), r.Take(sigLen)...)
}

// decode reads one message; anything else is ErrMalformed.
func decode(b []byte) (msg, error) {
	var m msg
	r := core.NewPayloadReader(b)
	m.kind = r.U8()
	m.topic = r.ID()
	switch m.kind {
	case kindSubscribe, kindUnsubscribe, kindNotRoot:
	case kindAck:
		m.depth = r.U16()
	case kindDrop, kindRootState:
		m.handles = readHandles(r)
	case kindPublish:
		m.flags = r.U8()
		if m.flags&^(flagWantRoot|flagSigned) != 0 {
			r.Fail()
		}
		m.publisher = r.ID()
		m.seq = r.U64()
		m.sig = readSignature(r, m.flags)
		m.data = r.Rest()
	case kindData:
		m.publisher = r.ID()
		m.seq = r.U64()
		m.depth = r.U16()
		m.flags = r.U8()
		if m.flags&^flagSigned != 0 {
			r.Fail()
		}
		m.sig = readSignature(r, m.flags)
		m.data = r.Rest()
	case kindHeartbeat:
		n := int(r.U16())
		if n >= MaxHeartbeatTopics || n*id.Len != r.Len() {
			r.Fail()
			break
		}
		m.topics = make([]id.ID, n)
		for i := range m.topics {
			m.topics[i] = r.ID()
		}
	case kindRootIs:
		m.seq = r.U64()
	case kindAnycast:
		m.seq = r.U64()
		m.origin = r.Handle()
		n := int(r.U8())
		if n*id.Len > r.Len() {
			r.Fail()
			break
		}
		for range n {
			m.visited = append(m.visited, r.ID())
		}
		m.handles = readHandles(r)
		m.data = r.Rest()
	case kindAnycastResult:
		m.seq = r.U64()
		switch r.U8() {
		case 0:
		case 1:
			m.found = true
		default:
			r.Fail()
		}
		m.origin = r.Handle()
	default:
		r.Fail()
	}
	if r.Bad() || r.Len() != 0 {
		return msg{}, fmt.Errorf("%w (%d bytes)", ErrMalformed, len(b))
	}
	return m, nil
}

// Kind names the kind of a Scribe payload ("subscribe", "data", ...), or
// "invalid": for counting messages by kind (the simulator's figures).
func Kind(payload []byte) string {
	if len(payload) == 0 || int(payload[0]) >= len(kindNames) {
		return kindNames[0]
	}
	return kindNames[payload[0]]
}

// signedPayload is what a publisher signs of a message to a topic: the
// topic, its own id, the sequence number and the data, under a context
// string no other signature of a node's key starts with.
func signedPayload(topic, publisher id.ID, seq uint64, data []byte) []byte {
	b := make([]byte, 0, len(signContext)+2*id.Len+8+len(data))
	b = append(b, signContext...)
	b = append(b, topic[:]...)
	b = append(b, publisher[:]...)
	b = binary.BigEndian.AppendUint64(b, seq)
	return append(b, data...)
}

const signContext = "pastry topic message v1\x00"
