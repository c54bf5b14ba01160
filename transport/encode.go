package transport

import (
	"fmt"
	"slices"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/secure"
)

// The encoder sizes the message first and then writes it in one pass, in
// field-number order (the canonical protobuf encoding), so that nested
// lengths are known without copying.

// encHandle is a handle being encoded, with the addresses chosen for it.
type encHandle struct {
	h     id.Handle
	addrs []ma.Multiaddr
	cert  []byte // certificate mode: the node's certificate
	size  int    // encoded NodeHandle body
}

type encoder struct{ hs []encHandle }

var encoders = sync.Pool{New: func() any { return new(encoder) }}

// AppendMessage appends the frame encoding of m (a Frame with a message
// body, without length prefix) to dst.
func (c *Codec) AppendMessage(dst []byte, m *core.Message) ([]byte, error) {
	return c.appendMessage(dst, m, false)
}

// AppendMessageFrame is AppendMessage with the frame's length prefix.
func (c *Codec) AppendMessageFrame(dst []byte, m *core.Message) ([]byte, error) {
	return c.appendMessage(dst, m, true)
}

// FrameSize returns the size of m's frame without length prefix.
func (c *Codec) FrameSize(m *core.Message) (int, error) {
	e := encoders.Get().(*encoder)
	defer e.release()
	_, n, err := c.size(e, c.certifiedOnly(m))
	return n, err
}

// certifiedOnly is m, in certificate mode without the entries of its
// handle list whose certificates the codec does not know valid (expired
// since they were admitted, or forgotten), a counted Row lowered with
// them, as the receiver would refuse them: a leaf set with one expired
// member still goes out with the others. m itself is not changed.
func (c *Codec) certifiedOnly(m *core.Message) *core.Message {
	if !c.sec.certMode() || m == nil {
		return m
	}
	var drop []int
	for i, h := range m.Handles {
		if _, x, ok := c.Certificate(peer.ID(h.Addr)); !ok || x != h.ID {
			drop = append(drop, i)
		}
	}
	if len(drop) == 0 {
		return m
	}
	cp := *m
	var before int
	cp.Handles, before = dropHandles(slices.Clone(m.Handles), drop, int(m.Row))
	if countedRow(m.Type) && cp.Row > 0 {
		cp.Row -= int16(before)
	}
	return &cp
}

func (e *encoder) release() {
	clear(e.hs)
	if cap(e.hs) > 1024 {
		e.hs = nil
	}
	e.hs = e.hs[:0]
	encoders.Put(e)
}

func (c *Codec) appendMessage(dst []byte, m *core.Message, prefixed bool) ([]byte, error) {
	m = c.certifiedOnly(m)
	e := encoders.Get().(*encoder)
	defer e.release()
	msgSize, frameSize, err := c.size(e, m)
	if err != nil {
		return dst, err
	}
	if prefixed {
		dst = AppendFrameHeader(dst, frameSize)
	}
	dst = protowire.AppendTag(dst, fFrameMessage, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(msgSize))
	start := len(dst)

	hs := e.hs
	next := func() encHandle { h := hs[0]; hs = hs[1:]; return h }
	dst = appendVarintField(dst, fMsgType, uint64(m.Type))
	dst = appendVarintField(dst, fMsgFlags, uint64(m.Flags))
	if fromOnWire(m) {
		dst = appendHandle(dst, fMsgFrom, next())
	}
	dst = appendVarintField(dst, fMsgSeq, m.Seq)
	if !m.Key.U128().IsZero() {
		dst = protowire.AppendTag(dst, fMsgKey, protowire.BytesType)
		dst = protowire.AppendBytes(dst, m.Key[:])
	}
	if m.Origin != (id.Handle{}) {
		dst = appendHandle(dst, fMsgOrigin, next())
	}
	dst = appendVarintField(dst, fMsgApp, uint64(m.App))
	if len(m.Payload) > 0 {
		dst = protowire.AppendTag(dst, fMsgPayload, protowire.BytesType)
		dst = protowire.AppendBytes(dst, m.Payload)
	}
	dst = appendVarintField(dst, fMsgHops, uint64(m.Hops))
	for range m.Path {
		dst = appendHandle(dst, fMsgPath, next())
	}
	dst = appendVarintField(dst, fMsgSent, uint64(m.Sent))
	dst = appendVarintField(dst, fMsgRow, uint64(int64(m.Row)))
	for range m.Handles {
		dst = appendHandle(dst, fMsgHandles, next())
	}
	if m.Subject != (id.Handle{}) {
		dst = appendHandle(dst, fMsgSubject, next())
	}
	dst = appendVarintField(dst, fMsgCopy, uint64(m.Copy))
	if got := len(dst) - start; got != msgSize {
		// A bug here would put the stream out of sync for the receiver.
		return dst[:start], fmt.Errorf("transport: internal error: encoded %d bytes, sized %d", got, msgSize)
	}
	return dst, nil
}

// size checks m against the limits, chooses each handle's addresses (into
// e.hs, in encoding order) and returns the message and frame sizes.
func (c *Codec) size(e *encoder, m *core.Message) (msgSize, frameSize int, err error) {
	lim := &c.lim
	switch {
	case m == nil:
		return 0, 0, fmt.Errorf("%w: nil message", ErrBadType)
	case !m.Type.Valid():
		return 0, 0, fmt.Errorf("%w: %d", ErrBadType, uint8(m.Type))
	case m.From == (id.Handle{}):
		return 0, 0, fmt.Errorf("%w: from", ErrMissingHandle)
	case m.To == (id.Handle{}):
		return 0, 0, fmt.Errorf("%w: to", ErrMissingHandle)
	case len(m.Payload) > lim.MaxPayload:
		return 0, 0, fmt.Errorf("%w: payload %d bytes, limit %d", ErrLimit, len(m.Payload), lim.MaxPayload)
	case len(m.Handles) > lim.MaxHandles:
		return 0, 0, fmt.Errorf("%w: %d handles, limit %d", ErrLimit, len(m.Handles), lim.MaxHandles)
	case len(m.Path) > lim.MaxPath:
		return 0, 0, fmt.Errorf("%w: %d path entries, limit %d", ErrLimit, len(m.Path), lim.MaxPath)
	}
	n, err := bodySize(m, func(field string, h id.Handle) (int, error) {
		eh, err := c.prepareHandle(field, h)
		if err != nil {
			return 0, err
		}
		e.hs = append(e.hs, eh)
		return eh.size, nil
	})
	if err != nil {
		return 0, 0, err
	}
	frameSize = bytesFieldSize(fFrameMessage, n)
	if frameSize > lim.MaxFrame {
		return 0, 0, fmt.Errorf("%w: %s message encodes to %d bytes, limit %d", ErrFrameTooLarge, m.Type, frameSize, lim.MaxFrame)
	}
	return n, frameSize, nil
}

// bodySize is the size of m's Message body, with handle giving the size
// of each handle's NodeHandle body, in encoding order.
func bodySize(m *core.Message, handle func(field string, h id.Handle) (int, error)) (int, error) {
	n := varintFieldSize(fMsgType, uint64(m.Type)) + varintFieldSize(fMsgFlags, uint64(m.Flags)) +
		varintFieldSize(fMsgSeq, m.Seq) + varintFieldSize(fMsgApp, uint64(m.App)) +
		varintFieldSize(fMsgHops, uint64(m.Hops)) + varintFieldSize(fMsgSent, uint64(m.Sent)) +
		varintFieldSize(fMsgRow, uint64(int64(m.Row))) + varintFieldSize(fMsgCopy, uint64(m.Copy))
	if !m.Key.U128().IsZero() {
		n += bytesFieldSize(fMsgKey, len(m.Key))
	}
	if len(m.Payload) > 0 {
		n += bytesFieldSize(fMsgPayload, len(m.Payload))
	}
	add := func(field string, num protowire.Number, h id.Handle) error {
		hs, err := handle(field, h)
		n += bytesFieldSize(num, hs)
		return err
	}
	if fromOnWire(m) {
		if err := add("from", fMsgFrom, m.From); err != nil {
			return 0, err
		}
	}
	if m.Origin != (id.Handle{}) {
		if err := add("origin", fMsgOrigin, m.Origin); err != nil {
			return 0, err
		}
	}
	for _, h := range m.Path {
		if err := add("path", fMsgPath, h); err != nil {
			return 0, err
		}
	}
	for _, h := range m.Handles {
		if err := add("handles", fMsgHandles, h); err != nil {
			return 0, err
		}
	}
	if m.Subject != (id.Handle{}) {
		if err := add("subject", fMsgSubject, m.Subject); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// ModelHandleSize is the encoded size of a NodeHandle body for a node
// with an Ed25519 peer ID that advertises addrs.
func ModelHandleSize(addrs ...ma.Multiaddr) int {
	n := bytesFieldSize(fHandleNodeID, id.Len) + bytesFieldSize(fHandlePeerID, secure.Ed25519PeerIDLen)
	for _, a := range addrs {
		n += bytesFieldSize(fHandleAddrs, len(a.Bytes()))
	}
	return n
}

// ModelFrameSize is the size on the wire of m's frame, length prefix
// included, as this codec encodes it, but with every handle taking
// handleSize bytes (see ModelHandleSize): the size of a message whose
// handles carry no real peer ID, as the simulator's do. Limits are not
// checked.
func ModelFrameSize(m *core.Message, handleSize int) int {
	n, _ := bodySize(m, func(string, id.Handle) (int, error) { return handleSize, nil })
	f := bytesFieldSize(fFrameMessage, n)
	return frameHeaderLen(f) + f
}

// fromOnWire reports whether m's From goes on the wire. A hop's From and
// To are the stream's two ends, which the receiver knows (the remote peer
// is authenticated by the connection), so neither is sent, except From in
// an announcement, for its addresses: the receiver puts the new node in
// its state at once and passes it on, often before identify on the new
// connection has told it the sender's addresses.
func fromOnWire(m *core.Message) bool { return m.Type == core.MsgAnnounce }

// prepareHandle checks h and chooses its addresses.
func (c *Codec) prepareHandle(field string, h id.Handle) (encHandle, error) {
	if h.Addr == "" {
		return encHandle{}, fmt.Errorf("%w: %s: handle %s has no peer ID", ErrBadPeerID, field, h)
	}
	if len(h.Addr) > maxPeerIDLen {
		return encHandle{}, fmt.Errorf("%w: %s: %d-byte peer ID", ErrBadPeerID, field, len(h.Addr))
	}
	// Never send a handle the receiver will reject (with the whole
	// message): check it as the decoder will. Cached, so cheap.
	_, x, _, err := c.ids.nodeIDString(h.Addr)
	if err != nil {
		return encHandle{}, fmt.Errorf("%w: %s: handle %s: %v", ErrBadPeerID, field, h, err)
	}
	eh := encHandle{h: h}
	if c.sec.certMode() {
		raw, cx, ok := c.Certificate(peer.ID(h.Addr))
		if !ok || cx != h.ID {
			return encHandle{}, fmt.Errorf("%w: %s: handle %s: no valid certificate known", ErrBadCert, field, h)
		}
		eh.cert = raw
	} else if x != h.ID {
		return encHandle{}, fmt.Errorf("%w: %s: handle %s: its peer ID gives %s", ErrNodeIDMismatch, field, h, x)
	}
	if c.advert != nil {
		eh.addrs = c.pickAddrs(c.advert(peer.ID(h.Addr)))
	}
	eh.size = bytesFieldSize(fHandleNodeID, len(h.ID)) + bytesFieldSize(fHandlePeerID, len(h.Addr))
	for _, a := range eh.addrs {
		eh.size += bytesFieldSize(fHandleAddrs, len(a.Bytes()))
	}
	if eh.cert != nil {
		eh.size += bytesFieldSize(fHandleCert, len(eh.cert))
	}
	return eh, nil
}

// pickAddrs keeps at most MaxAddrs addresses that fit MaxAddrLen.
func (c *Codec) pickAddrs(as []ma.Multiaddr) []ma.Multiaddr {
	ok := func(a ma.Multiaddr) bool { n := len(a.Bytes()); return n > 0 && n <= c.lim.MaxAddrLen }
	for i, a := range as {
		if !ok(a) { // copy out the good ones
			out := make([]ma.Multiaddr, 0, min(len(as), c.lim.MaxAddrs))
			out = append(out, as[:min(i, c.lim.MaxAddrs)]...)
			for _, a := range as[i+1:] {
				if len(out) < c.lim.MaxAddrs && ok(a) {
					out = append(out, a)
				}
			}
			return out
		}
	}
	return as[:min(len(as), c.lim.MaxAddrs)]
}

func appendHandle(dst []byte, num protowire.Number, eh encHandle) []byte {
	dst = protowire.AppendTag(dst, num, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(eh.size))
	dst = protowire.AppendTag(dst, fHandleNodeID, protowire.BytesType)
	dst = protowire.AppendBytes(dst, eh.h.ID[:])
	dst = protowire.AppendTag(dst, fHandlePeerID, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(len(eh.h.Addr)))
	dst = append(dst, eh.h.Addr...)
	for _, a := range eh.addrs {
		dst = protowire.AppendTag(dst, fHandleAddrs, protowire.BytesType)
		dst = protowire.AppendBytes(dst, a.Bytes())
	}
	if eh.cert != nil {
		dst = protowire.AppendTag(dst, fHandleCert, protowire.BytesType)
		dst = protowire.AppendBytes(dst, eh.cert)
	}
	return dst
}

// appendVarintField appends a varint field, omitted when zero (proto3).
func appendVarintField(dst []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return dst
	}
	dst = protowire.AppendTag(dst, num, protowire.VarintType)
	return protowire.AppendVarint(dst, v)
}

func varintFieldSize(num protowire.Number, v uint64) int {
	if v == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeVarint(v)
}

func bytesFieldSize(num protowire.Number, n int) int {
	return protowire.SizeTag(num) + protowire.SizeBytes(n)
}

// AppendPing appends a ping frame (without length prefix).
func AppendPing(dst []byte, nonce uint64) []byte { return appendNonce(dst, fFramePing, nonce) }

// AppendPong appends a pong frame (without length prefix).
func AppendPong(dst []byte, nonce uint64) []byte { return appendNonce(dst, fFramePong, nonce) }

func appendNonce(dst []byte, num protowire.Number, nonce uint64) []byte {
	dst = protowire.AppendTag(dst, num, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(varintFieldSize(fNonce, nonce)))
	return appendVarintField(dst, fNonce, nonce)
}

// appendNonceFrame appends a prefixed ping or pong frame.
func appendNonceFrame(dst []byte, num protowire.Number, nonce uint64) []byte {
	dst = AppendFrameHeader(dst, bytesFieldSize(num, varintFieldSize(fNonce, nonce)))
	return appendNonce(dst, num, nonce)
}
