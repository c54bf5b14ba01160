package transport

import (
	"fmt"
	"math"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/secure"
)

// Limits bound what a decoder accepts (and what an encoder produces).
type Limits struct {
	// MaxFrame bounds a frame in bytes, without its length prefix.
	// Default DefaultMaxFrame (1 MiB + 256 KiB).
	MaxFrame int
	// MaxPayload bounds Message.payload in bytes. Default 1 MiB, as
	// core.DefaultConfig's MaxPayload.
	MaxPayload int
	// MaxHandles bounds Message.handles. Default 512, as core's MaxHandles.
	MaxHandles int
	// MaxPath bounds Message.path. Default 256 (core drops a message after
	// MaxHops, default 64).
	MaxPath int
	// MaxAddrs bounds the addresses of one handle. Default 8. The encoder
	// sends at most this many and skips longer ones.
	MaxAddrs int
	// MaxAddrLen bounds one binary multiaddr. Default 256 bytes (room for
	// a /dns name of 253 characters).
	MaxAddrLen int
}

// DefaultLimits returns the limits described on Limits' fields. A handle
// with 8 addresses of 256 bytes takes at most 2.2 KB, so 512+256+4 such
// handles and a full payload would exceed MaxFrame; real handles carry a
// few addresses of about 10-30 bytes (about 100-200 bytes a handle).
func DefaultLimits() Limits {
	return Limits{
		MaxFrame: DefaultMaxFrame, MaxPayload: 1 << 20, MaxHandles: 512,
		MaxPath: 256, MaxAddrs: 8, MaxAddrLen: 256,
	}
}

func (l Limits) validate() error {
	switch {
	case l.MaxFrame < 64 || l.MaxFrame > maxFrameLimit:
		return fmt.Errorf("MaxFrame = %d, want 64 to %d", l.MaxFrame, maxFrameLimit)
	case l.MaxPayload < 0 || l.MaxPayload > l.MaxFrame:
		return fmt.Errorf("MaxPayload = %d, want 0 to MaxFrame (%d)", l.MaxPayload, l.MaxFrame)
	case l.MaxHandles < 0 || l.MaxPath < 0 || l.MaxAddrs < 0:
		return fmt.Errorf("MaxHandles, MaxPath, MaxAddrs = %d, %d, %d, want >= 0", l.MaxHandles, l.MaxPath, l.MaxAddrs)
	case l.MaxAddrLen < 0 || l.MaxAddrLen > 4096:
		return fmt.Errorf("MaxAddrLen = %d, want 0 to 4096", l.MaxAddrLen)
	}
	return nil
}

// AddrFunc returns the addresses to advertise with a handle for peer p.
// It may return nil. It must be safe for concurrent use.
type AddrFunc func(p peer.ID) []ma.Multiaddr

// Codec encodes core messages into frames and decodes frames back,
// strictly: every count and length is checked before anything is
// allocated for it, and every handle's node id is recomputed from its
// peer ID. A Codec is safe for concurrent use.
type Codec struct {
	lim    Limits
	advert AddrFunc
	ids    idCache
	addrs  addrCache

	// The admission mode (certs.go); nil is open mode without the puzzle.
	sec     *Security
	certs   certStore
	secCtr  securityCounters
	ownCert []byte
}

// NewCodec returns a codec with limits lim (DefaultLimits for the zero
// value) that advertises addresses from addrs (none if nil).
func NewCodec(lim Limits, addrs AddrFunc) (*Codec, error) {
	if lim == (Limits{}) {
		lim = DefaultLimits()
	}
	if err := lim.validate(); err != nil {
		return nil, fmt.Errorf("transport: codec limits: %w", err)
	}
	return &Codec{lim: lim, advert: addrs}, nil
}

// Limits returns the codec's limits.
func (c *Codec) Limits() Limits { return c.lim }

// FrameKind says what a frame carries.
type FrameKind uint8

const (
	FrameInvalid FrameKind = iota
	FrameMessage
	FramePing
	FramePong
	// FrameHello carries the certificate of a stream's opener, the first
	// frame of every stream in certificate mode.
	FrameHello
)

// Frame is a decoded frame.
type Frame struct {
	Kind FrameKind
	// Msg is the message of a FrameMessage. Every handle in it has been
	// verified; Msg.Payload does not alias the input.
	Msg *core.Message
	// Addrs holds the addresses learned from the message, one entry per
	// peer, in the order the handles came in (the first handle of a peer
	// that carried any wins). Nil if none. The Addrs slices may be shared
	// with other frames: do not modify them.
	Addrs []PeerAddrs
	// Nonce is the nonce of a ping or pong.
	Nonce uint64
	// Cert is the certificate of a FrameHello (a copy).
	Cert []byte
}

// PeerAddrs is the address list that a message's handles carried for one
// peer.
type PeerAddrs struct {
	Peer  peer.ID
	Addrs []ma.Multiaddr
}

// AddrsOf returns the addresses f carried for p, nil if none.
func (f *Frame) AddrsOf(p peer.ID) []ma.Multiaddr {
	for _, e := range f.Addrs {
		if e.Peer == p {
			return e.Addrs
		}
	}
	return nil
}

// Field numbers of pastry.proto.
const (
	fFrameMessage = 1
	fFramePing    = 2
	fFramePong    = 3
	fFrameCert    = 4

	fNonce = 1

	fHandleNodeID = 1
	fHandlePeerID = 2
	fHandleAddrs  = 3
	fHandleCert   = 4

	fMsgType    = 1
	fMsgFlags   = 2
	fMsgFrom    = 3
	fMsgTo      = 4
	fMsgSeq     = 5
	fMsgKey     = 6
	fMsgOrigin  = 7
	fMsgApp     = 8
	fMsgPayload = 9
	fMsgHops    = 10
	fMsgPath    = 11
	fMsgSent    = 12
	fMsgRow     = 13
	fMsgHandles = 14
	fMsgSubject = 15
	fMsgCopy    = 16
)

// maxPeerIDLen bounds a peer_id before it is parsed; a canonical Ed25519
// peer ID is 38 bytes.
const maxPeerIDLen = 64

// Decode decodes one frame (without its length prefix). It does not
// retain b. Errors wrap the sentinel for their Reason.
func (c *Codec) Decode(b []byte) (Frame, error) {
	var f Frame
	if len(b) > c.lim.MaxFrame {
		return f, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, len(b), c.lim.MaxFrame)
	}
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return Frame{}, malformed("frame", protowire.ParseError(n))
		}
		b = b[n:]
		if num < fFrameMessage || num > fFrameCert {
			if b, n = skipField(num, typ, b); n < 0 {
				return Frame{}, malformed("frame", protowire.ParseError(n))
			}
			continue
		}
		if typ != protowire.BytesType {
			return Frame{}, malformed("frame", fmt.Errorf("field %d has wire type %d", num, typ))
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return Frame{}, malformed("frame", protowire.ParseError(n))
		}
		b = b[n:]
		if f.Kind != FrameInvalid {
			return Frame{}, malformed("frame", fmt.Errorf("more than one body"))
		}
		var err error
		switch num {
		case fFrameMessage:
			f.Kind = FrameMessage
			f.Msg, f.Addrs, err = c.decodeMessage(v)
		case fFramePing:
			f.Kind = FramePing
			f.Nonce, err = decodeNonce(v)
		case fFramePong:
			f.Kind = FramePong
			f.Nonce, err = decodeNonce(v)
		case fFrameCert:
			f.Kind = FrameHello
			if len(v) > secure.MaxCertLen {
				err = fmt.Errorf("%w: %d-byte certificate, limit %d", ErrLimit, len(v), secure.MaxCertLen)
			}
			f.Cert = append([]byte(nil), v...)
		}
		if err != nil {
			return Frame{}, err
		}
	}
	if f.Kind == FrameInvalid {
		return Frame{}, malformed("frame", fmt.Errorf("no body"))
	}
	return f, nil
}

func malformed(what string, err error) error {
	return fmt.Errorf("%w: %s: %v", ErrMalformed, what, err)
}

// consumeTag is protowire.ConsumeTag that also refuses field numbers
// above 2^29-1, the protobuf maximum (ConsumeTag accepts up to 2^31-1).
// Found by FuzzDecode: without it the codec skipped, as unknown, fields
// that protobuf decoders reject.
func consumeTag(b []byte) (protowire.Number, protowire.Type, int) {
	num, typ, n := protowire.ConsumeTag(b)
	if n >= 0 && !num.IsValid() {
		return 0, 0, -2 // protowire.ParseError(-2): "invalid field number"
	}
	return num, typ, n
}

// skipField skips an unknown field's value. Groups (deprecated, and
// recursive) are refused.
func skipField(num protowire.Number, typ protowire.Type, b []byte) ([]byte, int) {
	if typ == protowire.StartGroupType || typ == protowire.EndGroupType {
		return b, -1
	}
	n := protowire.ConsumeFieldValue(num, typ, b)
	if n < 0 {
		return b, n
	}
	return b[n:], n
}

func decodeNonce(b []byte) (uint64, error) {
	var nonce uint64
	seen := false
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return 0, malformed("ping", protowire.ParseError(n))
		}
		b = b[n:]
		if num != fNonce {
			if b, n = skipField(num, typ, b); n < 0 {
				return 0, malformed("ping", protowire.ParseError(n))
			}
			continue
		}
		if typ != protowire.VarintType || seen {
			return 0, malformed("ping", fmt.Errorf("bad or repeated nonce"))
		}
		seen = true
		if nonce, n = protowire.ConsumeVarint(b); n < 0 {
			return 0, malformed("ping", protowire.ParseError(n))
		}
		b = b[n:]
	}
	return nonce, nil
}

// msgDecoder is the state of one message decode.
type msgDecoder struct {
	c     *Codec
	m     *core.Message
	addrs []PeerAddrs // the peers whose handles carried addresses
	// pend holds the handles' certificates (certificate mode), checked
	// together once the message is decoded.
	pend []pendingCert
	// drop holds the indices of Handles entries refused while decoding
	// (no certificate, or the puzzle unsolved), increasing.
	drop []int
	// index holds the peers in addrs once there are addrsIndexAt of them,
	// so that a message with hundreds of such peers costs map lookups
	// rather than a quadratic scan (which made BenchmarkDecodeManyPeers,
	// 768 peers, 5-6x slower).
	index map[peer.ID]struct{}
}

const addrsIndexAt = 32

// hasAddrs says whether a handle of p carried addresses already.
func (d *msgDecoder) hasAddrs(p peer.ID) bool {
	if d.index != nil {
		_, ok := d.index[p]
		return ok
	}
	for i := range d.addrs {
		if d.addrs[i].Peer == p {
			return true
		}
	}
	return false
}

func (d *msgDecoder) addAddrs(p peer.ID, addrs []ma.Multiaddr) {
	d.addrs = append(d.addrs, PeerAddrs{p, addrs}) // most messages carry one list
	switch {
	case d.index != nil:
		d.index[p] = struct{}{}
	case len(d.addrs) == addrsIndexAt:
		d.index = make(map[peer.ID]struct{}, 2*addrsIndexAt)
		for _, e := range d.addrs {
			d.index[e.Peer] = struct{}{}
		}
	}
}

func (c *Codec) decodeMessage(b []byte) (*core.Message, []PeerAddrs, error) {
	d := msgDecoder{c: c, m: new(core.Message)}
	m := d.m
	var seen uint32 // singular fields seen, by field number
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return nil, nil, malformed("message", protowire.ParseError(n))
		}
		b = b[n:]
		if num > fMsgCopy {
			if b, n = skipField(num, typ, b); n < 0 {
				return nil, nil, malformed("message", protowire.ParseError(n))
			}
			continue
		}
		if num != fMsgPath && num != fMsgHandles {
			if seen&(1<<num) != 0 {
				return nil, nil, malformed("message", fmt.Errorf("field %d repeated", num))
			}
			seen |= 1 << num
		}
		var (
			u   uint64
			v   []byte
			err error
		)
		switch num {
		case fMsgType, fMsgFlags, fMsgSeq, fMsgApp, fMsgHops, fMsgSent, fMsgRow, fMsgCopy:
			if typ != protowire.VarintType {
				return nil, nil, malformed("message", fmt.Errorf("field %d has wire type %d", num, typ))
			}
			u, n = protowire.ConsumeVarint(b)
		default:
			if typ != protowire.BytesType {
				return nil, nil, malformed("message", fmt.Errorf("field %d has wire type %d", num, typ))
			}
			v, n = protowire.ConsumeBytes(b)
		}
		if n < 0 {
			return nil, nil, malformed("message", protowire.ParseError(n))
		}
		b = b[n:]
		switch num {
		case fMsgType:
			if u > math.MaxUint8 || !core.MsgType(u).Valid() {
				return nil, nil, fmt.Errorf("%w: %d", ErrBadType, u)
			}
			m.Type = core.MsgType(u)
		case fMsgFlags:
			if u > math.MaxUint8 {
				return nil, nil, fmt.Errorf("%w: flags %#x do not fit 8 bits", ErrLimit, u)
			}
			m.Flags = core.Flags(u)
		case fMsgSeq:
			m.Seq = u
		case fMsgApp:
			if u > math.MaxUint32 {
				return nil, nil, fmt.Errorf("%w: app %d does not fit 32 bits", ErrLimit, u)
			}
			m.App = core.AppID(u)
		case fMsgHops:
			if u > math.MaxUint16 {
				return nil, nil, fmt.Errorf("%w: hops %d do not fit 16 bits", ErrLimit, u)
			}
			m.Hops = uint16(u)
		case fMsgSent:
			m.Sent = int64(u)
		case fMsgCopy:
			if u > math.MaxUint32 {
				return nil, nil, fmt.Errorf("%w: copy id %d does not fit 32 bits", ErrLimit, u)
			}
			m.Copy = uint32(u)
		case fMsgRow:
			if r := int64(u); r < math.MinInt16 || r > math.MaxInt16 {
				return nil, nil, fmt.Errorf("%w: row %d does not fit 16 bits", ErrLimit, r)
			}
			m.Row = int16(int64(u))
		case fMsgKey:
			if len(v) != 0 {
				if m.Key, err = id.FromBytes(v); err != nil {
					return nil, nil, fmt.Errorf("%w: key: %v", ErrBadID, err)
				}
			}
		case fMsgPayload:
			if len(v) > c.lim.MaxPayload {
				return nil, nil, fmt.Errorf("%w: payload %d bytes, limit %d", ErrLimit, len(v), c.lim.MaxPayload)
			}
			if len(v) > 0 {
				m.Payload = append([]byte(nil), v...)
			}
		case fMsgFrom:
			m.From, err = d.handle("from", v, -1)
		case fMsgTo:
			m.To, err = d.handle("to", v, -1)
		case fMsgOrigin:
			m.Origin, err = d.handle("origin", v, -1)
		case fMsgSubject:
			m.Subject, err = d.handle("subject", v, -1)
		case fMsgPath:
			if len(m.Path) >= c.lim.MaxPath {
				return nil, nil, fmt.Errorf("%w: more than %d path entries", ErrLimit, c.lim.MaxPath)
			}
			var h id.Handle
			h, err = d.handle("path", v, -1)
			m.Path = append(m.Path, h)
		case fMsgHandles:
			if len(m.Handles) >= c.lim.MaxHandles {
				return nil, nil, fmt.Errorf("%w: more than %d handles", ErrLimit, c.lim.MaxHandles)
			}
			var h id.Handle
			h, err = d.handle("handles", v, len(m.Handles))
			m.Handles = append(m.Handles, h)
		}
		if err != nil {
			return nil, nil, err
		}
	}
	if !m.Type.Valid() {
		return nil, nil, fmt.Errorf("%w: type missing", ErrBadType)
	}
	if err := d.refuse(); err != nil {
		return nil, nil, err
	}
	return m, d.addrs, nil
}

// refuse applies the admission mode's verdicts on the decoded message's
// handles: a refused entry of Handles is removed (with its addresses; a
// Row that counts leading handles is taken down with it), any other
// refused handle refuses the message.
func (d *msgDecoder) refuse() error {
	if len(d.pend) == 0 && len(d.drop) == 0 {
		return nil
	}
	drop := d.drop
	if len(d.pend) > 0 {
		more, err := d.c.checkCerts(d.pend)
		if err != nil {
			return err
		}
		drop = mergeSorted(drop, more)
	}
	if len(drop) == 0 {
		return nil
	}
	m := d.m
	gone := make(map[string]bool, len(drop))
	for _, i := range drop {
		gone[m.Handles[i].Addr] = true
	}
	var before int
	m.Handles, before = dropHandles(m.Handles, drop, int(m.Row))
	if countedRow(m.Type) && m.Row > 0 {
		m.Row -= int16(before)
	}
	// Addresses only of peers that some handle still names.
	keep := map[string]bool{string(m.From.Addr): true, m.Origin.Addr: true, m.Subject.Addr: true, m.To.Addr: true}
	for _, h := range m.Path {
		keep[h.Addr] = true
	}
	for _, h := range m.Handles {
		keep[h.Addr] = true
	}
	out := d.addrs[:0]
	for _, e := range d.addrs {
		if !gone[string(e.Peer)] || keep[string(e.Peer)] {
			out = append(out, e)
		}
	}
	d.addrs = out
	if len(d.addrs) == 0 {
		d.addrs = nil
	}
	return nil
}

// mergeSorted merges two increasing lists of indices.
func mergeSorted(a, b []int) []int {
	if len(a) == 0 {
		return b
	}
	out := make([]int, 0, len(a)+len(b))
	for len(a) > 0 || len(b) > 0 {
		switch {
		case len(b) == 0 || len(a) > 0 && a[0] < b[0]:
			out, a = append(out, a[0]), a[1:]
		case len(a) == 0 || b[0] < a[0]:
			out, b = append(out, b[0]), b[1:]
		default:
			out, a, b = append(out, a[0]), a[1:], b[1:]
		}
	}
	return out
}

// handle decodes and verifies one NodeHandle; list is its index in
// Message.Handles, or -1 for a handle anywhere else.
func (d *msgDecoder) handle(field string, b []byte, list int) (id.Handle, error) {
	lim := &d.c.lim
	var (
		nodeID, pid []byte
		cert        []byte
		haveID      bool
		havePID     bool
		haveCert    bool
		rawBuf      [8][]byte
		raw         = rawBuf[:0]
	)
	certMode := d.c.sec.certMode()
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return id.Handle{}, malformed(field, protowire.ParseError(n))
		}
		b = b[n:]
		if num > fHandleAddrs && (num != fHandleCert || !certMode) {
			if b, n = skipField(num, typ, b); n < 0 {
				return id.Handle{}, malformed(field, protowire.ParseError(n))
			}
			continue
		}
		if typ != protowire.BytesType {
			return id.Handle{}, malformed(field, fmt.Errorf("handle field %d has wire type %d", num, typ))
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return id.Handle{}, malformed(field, protowire.ParseError(n))
		}
		b = b[n:]
		switch num {
		case fHandleNodeID:
			if haveID {
				return id.Handle{}, malformed(field, fmt.Errorf("node_id repeated"))
			}
			nodeID, haveID = v, true
		case fHandlePeerID:
			if havePID {
				return id.Handle{}, malformed(field, fmt.Errorf("peer_id repeated"))
			}
			pid, havePID = v, true
		case fHandleAddrs:
			if len(raw) >= lim.MaxAddrs {
				return id.Handle{}, fmt.Errorf("%w: %s: more than %d addresses", ErrLimit, field, lim.MaxAddrs)
			}
			if len(v) > lim.MaxAddrLen {
				return id.Handle{}, fmt.Errorf("%w: %s: %d-byte address, limit %d", ErrLimit, field, len(v), lim.MaxAddrLen)
			}
			raw = append(raw, v)
		case fHandleCert:
			if haveCert {
				return id.Handle{}, malformed(field, fmt.Errorf("cert repeated"))
			}
			if len(v) > secure.MaxCertLen {
				return id.Handle{}, fmt.Errorf("%w: %s: %d-byte certificate, limit %d", ErrLimit, field, len(v), secure.MaxCertLen)
			}
			cert, haveCert = v, true
		}
	}
	if len(nodeID) != id.Len {
		return id.Handle{}, fmt.Errorf("%w: %s: node_id has %d bytes, want %d", ErrBadID, field, len(nodeID), id.Len)
	}
	if len(pid) == 0 || len(pid) > maxPeerIDLen {
		return id.Handle{}, fmt.Errorf("%w: %s: %d-byte peer_id", ErrBadPeerID, field, len(pid))
	}
	p, x, bits, err := d.c.ids.nodeID(pid, d.c.sec != nil && d.c.sec.PuzzleBits > 0)
	if err != nil {
		return id.Handle{}, fmt.Errorf("%w: %s: %v", ErrBadPeerID, field, err)
	}
	switch {
	case certMode:
		// The id is the certificate's, checked with the message's others.
		x = id.ID(nodeID)
		if !haveCert {
			d.c.secCtr.cert[CertMissing].Add(1)
			if list < 0 {
				return id.Handle{}, fmt.Errorf("%w: %s: %v", ErrBadCert, field, errCertMissing)
			}
			d.drop = append(d.drop, list)
			break
		}
		d.pend = append(d.pend, pendingCert{peer: p, raw: cert, claimed: x, field: field, list: list})
	case id.ID(nodeID) != x:
		return id.Handle{}, fmt.Errorf("%w: %s: claims %x, peer's key gives %s", ErrNodeIDMismatch, field, nodeID, x)
	case d.c.sec != nil && bits < d.c.sec.PuzzleBits:
		d.c.secCtr.puzzle.Add(1)
		if list < 0 {
			return id.Handle{}, fmt.Errorf("%w: %s: %d leading zero bits, the network wants %d", ErrPuzzle, field, bits, d.c.sec.PuzzleBits)
		}
		d.drop = append(d.drop, list)
	}
	if len(raw) > 0 {
		if !d.hasAddrs(p) {
			addrs, ok := d.c.addrs.get(p, raw)
			if !ok {
				addrs = make([]ma.Multiaddr, 0, len(raw))
				for _, r := range raw {
					a, err := ma.NewMultiaddrBytes(r)
					if err != nil || len(a) == 0 {
						return id.Handle{}, fmt.Errorf("%w: %s: %x: %v", ErrBadAddr, field, r, err)
					}
					addrs = append(addrs, a)
				}
				d.c.addrs.put(p, raw, addrs)
			}
			d.addAddrs(p, addrs)
		}
	}
	return id.Handle{ID: x, Addr: string(p)}, nil
}

// addrCache remembers, per peer, the addresses its handles carried last
// and what they parsed to, so that a handle carrying the same bytes again
// (the origin of every message a node routes carries its addresses) costs
// a comparison instead of a parse and a dozen allocations. The parse is a
// pure function of the bytes, so a hit is exact. It holds at most
// addrCacheSize peers and addrCacheBytes of addresses, and starts over
// when either is reached: a sender that makes up peers with 8 addresses of
// 256 bytes each cannot make it hold more than that. The slices it returns
// are shared: read them, never modify them.
type addrCache struct {
	mu    sync.RWMutex
	m     map[peer.ID]*cachedAddrs
	bytes int // cost of the entries in m
}

type cachedAddrs struct {
	raw   []string
	addrs []ma.Multiaddr
	cost  int
}

const (
	addrCacheSize = 8192
	// addrCacheBytes bounds the raw and parsed address bytes held, about
	// 2-3x what 8192 peers with real addresses (a few of 10-30 bytes) take;
	// the parsed multiaddrs' own overhead makes the heap they take about
	// four times as much (measured with a flood of 250-byte addresses).
	addrCacheBytes = 1 << 20
)

// get returns what raw parsed to last time p's handle carried it.
func (c *addrCache) get(p peer.ID, raw [][]byte) ([]ma.Multiaddr, bool) {
	c.mu.RLock()
	e := c.m[p]
	c.mu.RUnlock()
	if e == nil || len(e.raw) != len(raw) {
		return nil, false
	}
	for i, r := range raw {
		if e.raw[i] != string(r) {
			return nil, false
		}
	}
	return e.addrs, true
}

// put records that p's handle carried raw, parsed to addrs.
func (c *addrCache) put(p peer.ID, raw [][]byte, addrs []ma.Multiaddr) {
	e := &cachedAddrs{raw: make([]string, len(raw)), addrs: addrs, cost: len(p)}
	for i, r := range raw {
		e.raw[i] = string(r)
		e.cost += 2 * len(r) // the raw copy and the parsed address's bytes
	}
	c.mu.Lock()
	if old := c.m[p]; old != nil {
		c.bytes -= old.cost
	}
	if c.m == nil || len(c.m) >= addrCacheSize || c.bytes+e.cost > addrCacheBytes {
		c.m, c.bytes = make(map[peer.ID]*cachedAddrs), 0
	}
	c.m[p] = e
	c.bytes += e.cost
	c.mu.Unlock()
}

// idCache remembers verified peer ID -> node id derivations, so a handle
// seen again costs a map lookup instead of a key parse and a hash. The
// derivation is a pure function of the peer ID bytes, so caching is exact.
// It holds at most idCacheSize entries and starts over when full.
type idCache struct {
	mu sync.RWMutex
	m  map[string]cachedID
}

type cachedID struct {
	p    peer.ID // the interned peer ID, shared by every handle decoded
	x    id.ID
	bits int // the identity puzzle's leading zero bits (secure.PuzzleBits); -1 if not computed
}

const idCacheSize = 8192

// nodeID derives the node id of the peer ID in b (not retained), and with
// bits the puzzle bits of its key (-1 otherwise, if not known already).
func (c *idCache) nodeID(b []byte, bits bool) (peer.ID, id.ID, int, error) {
	c.mu.RLock()
	e, ok := c.m[string(b)]
	c.mu.RUnlock()
	if ok && (e.bits >= 0 || !bits) {
		return e.p, e.x, e.bits, nil
	}
	return c.derive(peer.ID(b), bits)
}

// nodeIDString is nodeID for a peer ID held in a string.
func (c *idCache) nodeIDString(s string) (peer.ID, id.ID, int, error) {
	c.mu.RLock()
	e, ok := c.m[s]
	c.mu.RUnlock()
	if ok {
		return e.p, e.x, e.bits, nil
	}
	return c.derive(peer.ID(s), false)
}

func (c *idCache) derive(p peer.ID, withBits bool) (peer.ID, id.ID, int, error) {
	x, err := secure.NodeIDFromPeer(p)
	if err != nil {
		return "", id.ID{}, 0, err
	}
	bits := -1 // not computed: open mode without the puzzle has no use for it
	if withBits {
		bits = PuzzleBitsOf(p)
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= idCacheSize {
		c.m = make(map[string]cachedID)
	}
	c.m[string(p)] = cachedID{p, x, bits}
	c.mu.Unlock()
	return p, x, bits, nil
}

// SettleEnds gives a decoded message the two ends of its hop, which the
// encoding leaves out (To always, From but in announcements): from, the
// authenticated peer it came from, and self, the receiver. A message that
// names other ends is refused with ErrFromMismatch or ErrMisdirected.
// A transport that carries Codec frames calls it on every message.
func SettleEnds(m *core.Message, from, self id.Handle) error {
	switch {
	case m.From == (id.Handle{}):
		m.From = from
	case m.From != from:
		return fmt.Errorf("%w: claims %s", ErrFromMismatch, m.From)
	}
	switch {
	case m.To == (id.Handle{}):
		m.To = self
	case m.To != self:
		return fmt.Errorf("%w: to %s", ErrMisdirected, m.To)
	}
	return nil
}
