package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
)

type memNode struct {
	t  *Mem
	in *inbox
	h  id.Handle
}

func attach(t *testing.T, hub *Hub, h id.Handle) *memNode {
	t.Helper()
	in := newInbox()
	m, err := hub.Attach(h, in.handle)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.Close()
		in.mu.Lock()
		defer in.mu.Unlock()
		if in.bad != "" {
			t.Error(in.bad)
		}
	})
	return &memNode{m, in, h}
}

func fakeHandle(i int) id.Handle {
	return id.Handle{ID: id.MustParse(fmt.Sprintf("%032x", i*7919)), Addr: fmt.Sprint("node-", i)}
}

func TestMemExchangeOrderedAndCopied(t *testing.T) {
	hub := NewHub()
	defer hub.Close()
	var nodes []*memNode
	for i := range 5 {
		nodes = append(nodes, attach(t, hub, fakeHandle(i)))
	}
	const per = 100
	var wg sync.WaitGroup
	for i, a := range nodes {
		wg.Go(func() {
			for j, b := range nodes {
				if i == j {
					continue
				}
				for k := range per {
					m := &core.Message{Type: core.MsgRoute, From: a.h, To: b.h, Seq: uint64(k), Payload: []byte{byte(k)},
						Handles: []id.Handle{a.h}}
					if err := a.t.Send(m); err != nil {
						t.Error(err)
						return
					}
					m.Payload[0]++ // the sender reuses its message: must not show
					m.Handles[0] = id.Handle{}
				}
			}
		})
	}
	wg.Wait()
	for _, b := range nodes {
		got := b.in.waitN(t, 4*per, 5*time.Second)
		next := map[string]uint64{}
		for _, m := range got {
			if m.Seq != next[m.From.Addr] {
				t.Fatalf("from %s: seq %d, want %d", m.From.Addr, m.Seq, next[m.From.Addr])
			}
			next[m.From.Addr]++
			if m.Payload[0] != byte(m.Seq) || m.Handles[0] != m.From {
				t.Fatal("delivered message shares memory with the sender's")
			}
		}
	}
	if st := nodes[0].t.Stats(); st.SentMsgs[core.MsgRoute] != 4*per || st.RecvMsgs[core.MsgRoute] != 4*per {
		t.Fatalf("stats %d sent %d received", st.SentMsgs[core.MsgRoute], st.RecvMsgs[core.MsgRoute])
	}
}

func TestMemChecksSender(t *testing.T) {
	hub := NewHub()
	defer hub.Close()
	a, b, c := attach(t, hub, fakeHandle(1)), attach(t, hub, fakeHandle(2)), attach(t, hub, fakeHandle(3))
	a.t.Send(&core.Message{Type: core.MsgRoute, From: c.h, To: b.h}) // a claims to be c
	a.t.Send(&core.Message{Type: core.MsgRoute, From: a.h, To: c.h, Seq: 9})
	c.in.waitN(t, 1, 5*time.Second)
	eventually(t, 5*time.Second, "the rejection", func() bool { return b.t.Stats().Rejected[ReasonFromMismatch] == 1 })
	if got := b.in.snapshot(); len(got) != 0 {
		t.Fatalf("impersonation delivered %v", got)
	}
	if err := a.t.Send(&core.Message{Type: 0, From: a.h, To: b.h}); !errors.Is(err, ErrBadType) {
		t.Fatalf("bad type: %v", err)
	}
	if err := a.t.Send(&core.Message{Type: core.MsgRoute, From: a.h, To: a.h}); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("to self: %v", err)
	}
	if err := a.t.Send(&core.Message{Type: core.MsgRoute, From: a.h, To: fakeHandle(77)}); err != nil {
		t.Fatalf("to nobody: %v (best-effort: no error)", err)
	}
	if a.t.Stats().Dropped[DropUnreachable] != 1 {
		t.Fatal("loss to an unknown endpoint not counted")
	}
	if _, err := hub.Attach(a.h, a.in.handle); err == nil {
		t.Fatal("attached the same address twice")
	}
}

// With HubCodec the hub checks handles as the libp2p transport does.
func TestMemCodecVerifiesHandles(t *testing.T) {
	hub := NewHub(HubCodec())
	defer hub.Close()
	ids := testIDs(t, 6)
	a, b := attach(t, hub, ids[0].h), attach(t, hub, ids[1].h)
	m := fullMessage(core.MsgJoinReply, ids)
	if err := a.t.Send(m); err != nil {
		t.Fatal(err)
	}
	got := b.in.waitN(t, 1, 5*time.Second)
	if got[0].Seq != m.Seq || len(got[0].Handles) != 3 || got[0].Handles[2] != ids[5].h {
		t.Fatalf("got %+v", got[0])
	}
	forged := *m
	forged.Handles = []id.Handle{{ID: ids[2].h.ID, Addr: ids[3].h.Addr}}
	if err := a.t.Send(&forged); !errors.Is(err, ErrNodeIDMismatch) {
		t.Fatalf("forged handle: the sender's codec let it out: %v", err)
	}
	// A hostile sender skips its own checks: the receiver's still hold.
	wire, err := a.t.codec.AppendMessage(nil, m)
	if err != nil {
		t.Fatal(err)
	}
	wire = bytes.Replace(wire, ids[5].h.ID[:], ids[2].h.ID[:], 1)
	hub.enqueue(a.t, peer.ID(b.h.Addr), memItem{kind: FrameMessage, wire: wire, typ: m.Type})
	eventually(t, 5*time.Second, "rejection", func() bool { return b.t.Stats().Rejected[ReasonNodeIDMismatch] == 1 })
	if st := a.t.Stats(); st.SentBytes[core.MsgJoinReply] == 0 {
		t.Fatal("bytes not counted with the codec")
	}
	if err := a.t.Send(&core.Message{Type: core.MsgSuspect, From: ids[0].h, To: ids[1].h, Subject: fakeHandle(1)}); !errors.Is(err, ErrBadPeerID) {
		t.Fatalf("fake handle: %v", err)
	}
}

func TestMemLatencyPingAndPartition(t *testing.T) {
	const oneWay = 5 * time.Millisecond
	hub := NewHub(HubLatency(func(_, _ peer.ID) time.Duration { return oneWay }))
	defer hub.Close()
	a, b := attach(t, hub, fakeHandle(1)), attach(t, hub, fakeHandle(2))
	pa, pb := peer.ID(a.h.Addr), peer.ID(b.h.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rtt, err := a.t.Ping(ctx, ph(pb))
	if err != nil || rtt < 2*oneWay {
		t.Fatalf("ping = %s, %v; want >= %s", rtt, err, 2*oneWay)
	}
	if srtt, ok := a.t.RTT(ph(pb)); !ok || srtt != rtt {
		t.Fatalf("RTT = %s, %v", srtt, ok)
	}
	hub.SetLink(pb, pa, false) // b's answers are lost
	short, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	if _, err := a.t.Ping(short, ph(pb)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ping across a cut link: %v", err)
	}
	a.t.Send(&core.Message{Type: core.MsgRoute, From: a.h, To: b.h}) // a -> b still up
	b.t.Send(&core.Message{Type: core.MsgRoute, From: b.h, To: a.h}) // lost
	b.in.waitN(t, 1, 5*time.Second)
	hub.SetLink(pb, pa, true)
	b.t.Send(&core.Message{Type: core.MsgRoute, From: b.h, To: a.h, Seq: 2})
	if got := a.in.waitN(t, 1, 5*time.Second); len(got) != 1 || got[0].Seq != 2 {
		t.Fatalf("after the partition healed: %v", got)
	}
	if _, err := a.t.Ping(ctx, ph("nobody")); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("ping to nobody: %v", err)
	}
}

func TestMemQueueBound(t *testing.T) {
	hub := NewHub(HubQueueLen(4), HubLatency(func(_, _ peer.ID) time.Duration { return 50 * time.Millisecond }))
	defer hub.Close()
	a, b := attach(t, hub, fakeHandle(1)), attach(t, hub, fakeHandle(2))
	var full int
	for i := range 10 {
		if err := a.t.Send(&core.Message{Type: core.MsgRoute, From: a.h, To: b.h, Seq: uint64(i)}); errors.Is(err, ErrQueueFull) {
			full++
		}
	}
	if full == 0 || a.t.Stats().Dropped[DropQueueFull] != uint64(full) {
		t.Fatalf("%d sends refused, %d counted", full, a.t.Stats().Dropped[DropQueueFull])
	}
	b.in.waitN(t, 10-full, 5*time.Second)
}

func TestMemCloseStopsDelivery(t *testing.T) {
	hub := NewHub(HubLatency(func(_, _ peer.ID) time.Duration { return 20 * time.Millisecond }))
	a, b := attach(t, hub, fakeHandle(1)), attach(t, hub, fakeHandle(2))
	for i := range 50 {
		a.t.Send(&core.Message{Type: core.MsgRoute, From: a.h, To: b.h, Seq: uint64(i)})
	}
	b.t.Close()
	n := len(b.in.snapshot())
	time.Sleep(50 * time.Millisecond)
	if len(b.in.snapshot()) != n {
		t.Fatal("handler called after Close")
	}
	if err := b.t.Send(&core.Message{Type: core.MsgRoute, From: b.h, To: a.h}); !errors.Is(err, ErrClosed) {
		t.Fatalf("send after close: %v", err)
	}
	hub.Close()
	if s := transportGoroutines(); s != "" {
		t.Fatalf("goroutines left:\n%s", s)
	}
	if _, err := hub.Attach(fakeHandle(3), b.in.handle); !errors.Is(err, ErrClosed) {
		t.Fatalf("attach to closed hub: %v", err)
	}
}

func TestMemAttachValidates(t *testing.T) {
	hub := NewHub()
	defer hub.Close()
	if _, err := hub.Attach(id.Handle{}, func(*core.Message) {}); err == nil || !strings.Contains(err.Error(), "Addr") {
		t.Fatalf("err = %v", err)
	}
}
