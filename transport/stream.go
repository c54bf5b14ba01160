package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
	msmux "github.com/multiformats/go-multistream"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/secure"
)

// Batching: the writer takes up to maxBatchFrames queued frames at once
// and writes them in as few writes as gatherBytes allows (writeFrames).
const (
	maxBatchFrames = 64
	gatherBytes    = 16 << 10 // a pooled buffer class (bufClasses)
)

// outStream is an open outbound stream. Nothing reads it: the remote
// answers pings on its own outbound stream to us (see queuePong), so a
// peer costs one goroutine per direction, its writer and the remote's
// reader. A stream the remote reset shows as a failed write.
//
// It has no buffer of its own: queued frames are already encoded, length
// prefixes included, in pooled buffers, so a batch of one is written as it
// is and a larger one is gathered into a pooled buffer for the time of its
// write (writeFrames). A bufio.Writer per stream held 4 KiB for every
// peer with a writer, 4% of a 200-node devnet's heap.
type outStream struct {
	s        network.Stream
	deadline time.Time // the write deadline set on s
	dialed   bool      // opening it dialed the connection
}

// writeFrames writes the frames of batch to s: a frame on its own as it
// is, consecutive ones gathered into writes of at most gatherBytes. It
// returns how many frames were written before any error.
func writeFrames(s io.Writer, batch []*outFrame) (written int, err error) {
	var gather *[]byte
	defer func() {
		if gather != nil {
			putBuf(gather)
		}
	}()
	for written < len(batch) {
		b := *batch[written].buf
		n, size := 1, len(b)
		for written+n < len(batch) && size+len(*batch[written+n].buf) <= gatherBytes {
			size += len(*batch[written+n].buf)
			n++
		}
		if n > 1 {
			if gather == nil {
				gather = getBuf(gatherBytes)
			}
			b = (*gather)[:0]
			for _, f := range batch[written : written+n] {
				b = append(b, *f.buf...)
			}
		}
		if _, err := s.Write(b); err != nil {
			return written, err
		}
		written += n
	}
	return written, nil
}

// armWrite makes sure the next write has at least half of d before its
// deadline. Setting a yamux deadline allocates a timer, so it is not done
// for every batch.
func (o *outStream) armWrite(d time.Duration) {
	now := time.Now()
	if o.deadline.Sub(now) < d/2 {
		o.deadline = now.Add(d)
		o.s.SetWriteDeadline(o.deadline)
	}
}

// writeLoop is a peer's writer: it owns the outbound stream. It waits on
// the peer's queue alone (a one-channel receive parks and wakes for a
// fraction of what a select over four channels costs, which a writer pays
// for nearly every frame when traffic is sparse): pings, the idle timer
// and Close wake it with an empty frame (see wake), and it looks at them
// before every wait. It ends once idle for the idle timeout, or for the
// ping idle timeout while it has carried only pings, pongs, probes and
// probe replies (a proximity measurement, or a liveness check of a node
// that may never enter the state). A connection such a writer dialed is
// then left to the measurement sweep (measureConns).
func (t *Libp2p) writeLoop(ps *peerState) {
	defer t.wg.Done()
	var out *outStream
	last := time.Now() // of the last write
	carried := false   // a message, not only pings and pongs
	idleFor := func() time.Duration {
		if carried {
			return t.cfg.idleTimeout
		}
		return min(t.cfg.pingIdle, t.cfg.idleTimeout)
	}
	idle := time.AfterFunc(idleFor(), func() { ps.idleDue.Store(true); t.wake(ps) })
	defer idle.Stop()
	var batch []*outFrame
	var held *outFrame // with InjectDelay: taken from the queue, not due yet
	for {
		// What the wake-ups are for is looked at before every wait: a
		// batch's drain may have taken the empty frame that told of it.
		if t.stopping.Load() {
			if held != nil {
				ps.qbytes.Add(-int64(len(*held.buf)))
				t.ctr.drop(DropClosed)
				held.free()
			}
			t.shutdownWriter(ps, out)
			return
		}
		for pinged := true; pinged; {
			select {
			case w := <-ps.pings:
				out = t.writePing(ps, out, w)
				last = time.Now()
			default:
				pinged = false
			}
		}
		if ps.idleDue.Swap(false) {
			left := idleFor() - time.Since(last)
			if left <= 0 && held != nil {
				left = idleFor() // busy: a frame waits for its injected delay
			}
			if left <= 0 {
				if t.idleExit(ps, out) {
					if !carried && out != nil && out.dialed {
						t.dialed.add(ps.id)
					}
					return
				}
				left = idleFor() // something came meanwhile
			}
			idle.Reset(left)
		}
		f := held
		if held = nil; f == nil {
			f = <-ps.queue
		}
		if f != nil {
			if f.due != 0 && !t.waitDue(f.due) {
				held = f // Close: the top of the loop drops it
				continue
			}
			batch = append(batch[:0], f)
			var msgs bool
			out, msgs, held = t.writeBatch(ps, out, batch)
			carried = carried || msgs
			last = time.Now()
		}
	}
}

// waitDue waits until the transport's clock reaches due (InjectDelay); it
// reports false if the transport closed first.
func (t *Libp2p) waitDue(due int64) bool {
	wait := time.Duration(due - t.now())
	if wait <= 0 {
		return true
	}
	tm := time.NewTimer(wait)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-t.ctx.Done():
		return false
	}
}

// idleExit ends an idle writer unless something was queued meanwhile,
// half-closing its stream; it reports whether it did.
func (t *Libp2p) idleExit(ps *peerState, out *outStream) bool {
	t.mu.Lock()
	if len(ps.queue) != 0 || len(ps.pings) != 0 {
		t.mu.Unlock()
		return false
	}
	ps.running = false
	t.releaseLocked(ps)
	t.mu.Unlock()
	if out != nil {
		out.s.Close() // the remote's reader sees the end and closes its side
		t.forget(out.s)
	}
	return true
}

// wake makes ps's writer look at its pings, its idle timer and Close: a
// nil frame in its queue. A full queue needs none: the writer is busy
// and looks after every frame.
func (t *Libp2p) wake(ps *peerState) {
	select {
	case ps.queue <- nil:
	default:
	}
}

// shutdownWriter ends a writer on Close.
func (t *Libp2p) shutdownWriter(ps *peerState, out *outStream) {
	if out != nil {
		out.s.Reset()
		t.forget(out.s)
	}
	// Close has marked the transport closed: nothing more is queued.
	t.dropQueued(ps, DropClosed)
	for drained := false; !drained; {
		select {
		case w := <-ps.pings:
			t.finishPing(w.nonce, ErrClosed)
		default:
			drained = true
		}
	}
	t.mu.Lock()
	ps.running = false
	t.releaseLocked(ps)
	t.mu.Unlock()
}

// stream returns the outbound stream, opening one if needed; nil if that
// failed (the failure is logged).
func (t *Libp2p) stream(ps *peerState, out *outStream) *outStream {
	if out != nil {
		return out
	}
	ctx, cancel := context.WithTimeout(t.ctx, t.cfg.dialTimeout)
	defer cancel()
	fresh := t.h.Network().Connectedness(ps.id) != network.Connected
	t0 := time.Now()
	s, err := t.h.NewStream(ctx, ps.id, t.proto)
	if err != nil && retryOpen(err, time.Since(t0)) {
		t.log.Debug("open stream failed, retrying", "peer", ps.id, "err", err)
		wait := openRetryMin + rand.N(openRetryJitter)
		if t.self.Addr > string(ps.id) {
			wait += openRetryYield // the other side goes first
		}
		select {
		case <-time.After(wait):
			// Past the swarm's dial backoff, which the failure just set.
			s, err = t.h.NewStream(network.WithForceDirectDial(ctx, "pastry: second try"), ps.id, t.proto)
		case <-ctx.Done():
		}
	}
	if err != nil {
		t.log.Debug("open stream failed", "peer", ps.id, "err", err)
		return nil
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		s.Reset()
		return nil
	}
	t.live[s] = struct{}{}
	t.mu.Unlock()
	t.ctr.streamsOpened.Add(1)
	if t.hello != nil { // certificate mode: who we are, first
		s.SetWriteDeadline(time.Now().Add(t.cfg.writeTimeout))
		if _, err := s.Write(t.hello); err != nil {
			t.log.Debug("certificate write failed", "peer", ps.id, "err", err)
			t.forget(s)
			s.Reset()
			return nil
		}
	}
	// Nothing is read from it; whatever the remote writes on it stays in
	// yamux's receive window (256 KiB) until the stream ends.
	s.CloseRead()
	return &outStream{s: s, dialed: fresh}
}

// A stream open that fails quickly for a reason that may pass is tried
// once more after openRetryMin plus up to openRetryJitter, skipping the
// dial backoff the first failure set. Two nodes that dial each other at
// the same moment can both fail (TCP simultaneous open on hosts that
// reuse ports, libp2p/go-libp2p#2925); the one with the greater peer ID
// waits openRetryYield longer, so that the other's second dial connects
// first and its own finds the connection. A failure that took
// openRetryFast or longer (a dial timing out) is not retried.
const (
	openRetryMin    = 10 * time.Millisecond
	openRetryJitter = 40 * time.Millisecond
	openRetryYield  = 100 * time.Millisecond
	openRetryFast   = time.Second
)

// retryOpen reports whether an open that failed with err after took is
// tried again: not when the peer has no address, does not speak the
// protocol or is in the swarm's dial backoff (its last dial failed, and
// the retry would bypass the backoff for every batch to a broken peer),
// nor when the transport is closing.
func retryOpen(err error, took time.Duration) bool {
	var unsupported msmux.ErrNotSupported[protocol.ID]
	switch {
	case took >= openRetryFast, errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	case errors.Is(err, swarm.ErrNoAddresses), errors.As(err, &unsupported):
		return false
	case errors.Is(err, swarm.ErrDialBackoff): // failed recently: not a collision
		return false
	}
	return true
}

// forget removes a finished stream from the live set.
func (t *Libp2p) forget(s network.Stream) {
	t.mu.Lock()
	delete(t.live, s)
	t.mu.Unlock()
}

// fail resets a broken outbound stream.
func (t *Libp2p) fail(ps *peerState, out *outStream, err error) {
	t.log.Debug("write failed, resetting stream", "peer", ps.id, "err", err)
	out.s.Reset()
	t.forget(out.s)
	t.ctr.streamResets.Add(1)
}

// writeBatch writes batch[0] and whatever else is queued (up to the batch
// limits) in one flush. It returns the stream to use next (nil if broken)
// and whether the batch held a message other than pongs, probes and probe
// replies (which keep the writer for the idle timeout). With InjectDelay,
// the first queued frame not yet due ends the batch and is returned as
// held, for the next one.
func (t *Libp2p) writeBatch(ps *peerState, out *outStream, batch []*outFrame) (_ *outStream, msgs bool, held *outFrame) {
	var now int64
	if ps.delay > 0 {
		now = t.now()
	}
	for len(batch) < maxBatchFrames && held == nil {
		select {
		case f := <-ps.queue:
			switch {
			case f == nil: // a nil frame's wake-up is this batch
			case f.due > now && ps.delay > 0:
				held = f
			default:
				batch = append(batch, f)
			}
			continue
		default:
		}
		break
	}
	var size int64
	for _, f := range batch {
		size += int64(len(*f.buf))
	}
	ps.qbytes.Add(-size)
	defer func() {
		for i := range batch {
			batch[i].free()
			batch[i] = nil
		}
	}()

	stale := out != nil // opened for an earlier batch
	if out = t.stream(ps, out); out == nil {
		t.unreachable(ps, batch)
		return nil, false, t.dropHeld(ps, held)
	}
	var flushed int
	var err error
	for {
		out.armWrite(t.cfg.writeTimeout)
		var n int
		n, err = writeFrames(out.s, batch[flushed:])
		for _, f := range batch[flushed : flushed+n] {
			if !f.pong {
				msgs = msgs || (f.typ != core.MsgProbe && f.typ != core.MsgProbeReply)
				t.ctr.sent(f.typ, len(*f.buf))
			}
		}
		flushed += n
		if err == nil {
			return out, msgs, held
		}
		t.fail(ps, out, err)
		if !stale || !retryWrite(err) {
			break
		}
		// The stream was gone before this batch: the remote reset it (its
		// transport closed, or it restarted on the same host) or its
		// connection closed (the peer restarted). What was not written
		// goes once more on a new stream; a join reply or a probe reply
		// would otherwise be lost, and a joiner wait out its timeout.
		stale = false
		t.ctr.writeRetries.Add(1)
		if out = t.stream(ps, nil); out == nil {
			t.unreachable(ps, batch[flushed:])
			return nil, msgs, t.dropHeld(ps, held)
		}
	}
	for _, f := range batch[flushed:] {
		t.ctr.drop(DropWrite)
		t.reportUnsent(f)
	}
	return nil, msgs, held
}

// dropHeld drops a held frame (see writeBatch) as unreachable does the
// queued ones; it returns nil.
func (t *Libp2p) dropHeld(ps *peerState, f *outFrame) *outFrame {
	if f != nil {
		ps.qbytes.Add(-int64(len(*f.buf)))
		t.ctr.drop(DropOpen)
		t.reportUnsent(f)
		f.free()
	}
	return nil
}

// unreachable drops unsent, and what is queued for ps too (rather than
// dial once per message), when no stream to ps could be opened.
func (t *Libp2p) unreachable(ps *peerState, unsent []*outFrame) {
	for _, f := range unsent {
		t.ctr.drop(DropOpen)
		t.reportUnsent(f)
	}
	t.dropQueued(ps, DropOpen)
}

// retryWrite reports whether a write that failed with err is tried again
// on a new stream: not after a timeout (the peer is slow to read, and a
// new stream would wait as long) nor when the transport is closing.
func retryWrite(err error) bool {
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout()) && !errors.Is(err, os.ErrDeadlineExceeded) &&
		!errors.Is(err, context.Canceled)
}

// dropQueued drops and counts what is queued for ps, telling
// ReportUnsent's function unless the transport is closing.
func (t *Libp2p) dropQueued(ps *peerState, why Drop) {
	for {
		select {
		case f := <-ps.queue:
			if f == nil {
				continue
			}
			ps.qbytes.Add(-int64(len(*f.buf)))
			t.ctr.drop(why)
			if why != DropClosed {
				t.reportUnsent(f)
			}
			f.free()
		default:
			return
		}
	}
}

// writePing writes a ping frame; the RTT clock starts when it is written.
// A stream found gone is replaced once, as in writeBatch.
func (t *Libp2p) writePing(ps *peerState, out *outStream, w *pingWait) *outStream {
	var buf [16]byte
	frame := appendNonceFrame(buf[:0], fFramePing, w.nonce)
	for stale := out != nil; ; stale = false {
		if out = t.stream(ps, out); out == nil {
			t.finishPing(w.nonce, ErrUnreachable)
			return nil
		}
		out.armWrite(t.cfg.writeTimeout)
		w.sent.Store(t.now() - ps.delay) // InjectDelay's, of the ping's way
		_, err := out.s.Write(frame)
		if err == nil {
			t.ctr.pingsSent.Add(1)
			return out
		}
		t.fail(ps, out, err)
		if out = nil; !stale || !retryWrite(err) {
			t.finishPing(w.nonce, err)
			return nil
		}
		t.ctr.writeRetries.Add(1)
	}
}

// handleStream serves an inbound stream until it ends.
func (t *Libp2p) handleStream(s network.Stream) {
	remote := s.Conn().RemotePeer()
	from, err := secure.HandleFromPeer(remote)
	if err != nil {
		t.ctr.reject(errors.Join(ErrBadRemote, err))
		s.Reset()
		return
	}
	if c1 := t.codec.sec; c1 != nil && c1.PuzzleBits > 0 && PuzzleBitsOf(remote) < c1.PuzzleBits {
		t.codec.secCtr.puzzle.Add(1)
		t.ctr.reject(ErrPuzzle)
		s.Reset()
		return
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		s.Reset()
		return
	}
	ps := t.peerLocked(remote)
	ps.refs++
	old := ps.in
	ps.in = s
	t.live[s] = struct{}{}
	t.wg.Add(1)
	t.mu.Unlock()
	defer t.wg.Done()
	if old != nil {
		old.Reset() // a peer has one inbound stream: the newest
	}
	t.ctr.streamsAccepted.Add(1)
	defer func() {
		t.mu.Lock()
		if ps.in == s {
			ps.in = nil
		}
		delete(t.live, s)
		t.releaseLocked(ps)
		t.mu.Unlock()
	}()
	t.readLoop(ps, s, from)
}

// readLoop reads frames from an inbound stream: messages for the handler,
// pings to answer.
func (t *Libp2p) readLoop(ps *peerState, s network.Stream, from id.Handle) {
	fr := NewFrameReader(s, t.cfg.limits.MaxFrame)
	defer fr.Release()
	certMode := t.codec.sec.certMode()
	greeted := !certMode       // certificate mode: the opener's certificate came
	var readDeadline time.Time // re-armed when less than idleTimeout is left
	for {
		if now := time.Now(); readDeadline.Sub(now) < t.cfg.idleTimeout {
			readDeadline = now.Add(2 * t.cfg.idleTimeout)
			s.SetReadDeadline(readDeadline)
		}
		p, err := fr.ReadFrame()
		if err != nil {
			if errors.Is(err, io.EOF) {
				s.Close()
				return
			}
			if ReasonOf(err) != ReasonOther {
				t.ctr.reject(err)
				t.ctr.streamResets.Add(1)
				t.log.Debug("bad frame, resetting stream", "peer", ps.id, "err", err)
			}
			s.Reset()
			return
		}
		f, err := t.codec.Decode(p)
		if err != nil {
			t.ctr.reject(err)
			t.log.Debug("rejected frame", "peer", ps.id, "reason", ReasonOf(err), "err", err)
			if errors.Is(err, ErrMalformed) { // garbage: the peer is broken or hostile
				t.ctr.streamResets.Add(1)
				s.Reset()
				return
			}
			continue
		}
		if certMode {
			var refuse error
			switch {
			case f.Kind == FrameHello && greeted:
				refuse = fmt.Errorf("%w: a second certificate frame", ErrUnexpectedFrame)
			case f.Kind == FrameHello:
				from, refuse = t.codec.VerifyHello(ps.id, f.Cert)
				greeted = refuse == nil
			case !greeted:
				refuse = fmt.Errorf("%w: no certificate first", ErrBadCert)
			case !t.codec.helloValid(ps.id):
				t.codec.secCtr.cert[CertExpired].Add(1)
				refuse = fmt.Errorf("%w: the opener's certificate expired", ErrBadCert)
			}
			if refuse != nil {
				t.ctr.reject(refuse)
				t.ctr.streamResets.Add(1)
				t.log.Debug("refused stream", "peer", ps.id, "err", refuse)
				s.Reset()
				return
			}
			if f.Kind == FrameHello {
				continue
			}
		}
		switch f.Kind {
		case FrameHello: // open mode: nobody sends one
			t.ctr.reject(fmt.Errorf("%w: a certificate frame in open mode", ErrUnexpectedFrame))
		case FramePing:
			t.queuePong(ps, f.Nonce)
		case FramePong:
			t.pong(ps.id, f.Nonce)
		case FrameMessage:
			t.deliver(ps, f, from, frameHeaderLen(len(p))+len(p))
		}
	}
}

// deliver checks a decoded message against the stream it came on and hands
// it to the handler.
func (t *Libp2p) deliver(ps *peerState, f Frame, from id.Handle, size int) {
	m := f.Msg
	if err := SettleEnds(m, from, t.self); err != nil {
		t.ctr.reject(err)
		t.log.Debug("rejected message", "peer", ps.id, "err", err, "from", m.From, "to", m.To)
		return
	}
	t.learnAddrs(ps.id, f.Addrs)
	if t.unverified.verify(ps.id) { // it talks to us itself: its addresses are its own word now
		t.h.Peerstore().UpdateAddrs(ps.id, t.cfg.unverifiedTTL, t.cfg.addrTTL)
	}
	t.ctr.received(m.Type, size)
	ps.deliver.Lock()
	defer ps.deliver.Unlock()
	if t.ctx.Err() == nil {
		t.handler(m)
	}
}

// learnAddrs puts the addresses the handles of a message from sender
// carried into the peerstore: the sender's own for AddrTTL; another
// peer's, unless it is connected, for UnverifiedAddrTTL, within the bounds
// on second-hand addresses (see unverifiedPeers).
func (t *Libp2p) learnAddrs(sender peer.ID, learned []PeerAddrs) {
	var now time.Time
	var senderBudget string
	for _, e := range learned {
		p, addrs := e.Peer, e.Addrs
		if string(p) == t.self.Addr {
			continue
		}
		if now.IsZero() {
			now = time.Now()
		}
		if t.learned.fresh(p, addrs, now) {
			continue
		}
		if t.cfg.addrFilter != nil {
			n := len(addrs)
			addrs = filterAddrs(p, addrs, t.cfg.addrFilter)
			if len(addrs) < n {
				t.ctr.addrsRefused.Add(uint64(n - len(addrs)))
			}
		}
		if len(addrs) == 0 {
			continue
		}
		ttl := t.cfg.addrTTL
		if p != sender && t.h.Network().Connectedness(p) != network.Connected {
			ttl = t.cfg.unverifiedTTL
			if !t.unverified.has(p, now) {
				if senderBudget == "" {
					senderBudget = "addrs:" + t.senderKey(sender)
				}
				if !t.budget.spend([]budgetKey{{senderBudget, addrBurst, addrRefill}}, now) ||
					!t.unverified.add(p, now, now.Add(ttl)) {
					t.ctr.addrsThrottled.Add(uint64(len(addrs)))
					continue
				}
			}
			addrs = addrs[:min(len(addrs), maxUnverifiedAddrs)]
		}
		t.h.Peerstore().AddAddrs(p, addrs, ttl)
	}
}

func filterAddrs(p peer.ID, as []ma.Multiaddr, keep func(peer.ID, ma.Multiaddr) bool) []ma.Multiaddr {
	out := as[:0:0]
	for _, a := range as {
		if keep(p, a) {
			out = append(out, a)
		}
	}
	return out
}
