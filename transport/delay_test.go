package transport

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pastrynet/pastry/core"
)

// InjectDelay holds each frame for its peer's delay, keeps the order of
// frames, and counts both ways' delays in a ping's RTT.
func TestLibp2pInjectDelay(t *testing.T) {
	const ab, ba = 60 * time.Millisecond, 40 * time.Millisecond
	var a, b *node
	a = newNode(t, 1, InjectDelay(func(p peer.ID) time.Duration {
		if p == b.h.ID() {
			return ab
		}
		return 0
	}))
	b = newNode(t, 2, InjectDelay(func(peer.ID) time.Duration { return ba }))
	introduce(a, b)

	const n = 40
	sent := make([]time.Time, n+1)
	for i := 1; i <= n; i++ {
		sent[i] = time.Now()
		if err := a.t.Send(msg(core.MsgRoute, a, b, uint64(i))); err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	// Each message is looked at as it arrives, so that its delay is its
	// own and not the wait for the last one.
	arrived := make([]time.Time, 0, n)
	deadline := time.After(10 * time.Second)
	for len(arrived) < n {
		got := b.in.snapshot()
		for len(arrived) < len(got) {
			arrived = append(arrived, time.Now())
		}
		if len(arrived) == n {
			break
		}
		select {
		case <-b.in.ch:
		case <-deadline:
			t.Fatalf("received %d of %d messages", len(arrived), n)
		}
	}
	got := b.in.snapshot()
	for i, m := range got {
		if m.Seq != uint64(i+1) {
			t.Fatalf("message %d has seq %d: order not kept", i, m.Seq)
		}
		if d := arrived[i].Sub(sent[m.Seq]); d < ab {
			t.Fatalf("message %d arrived after %s, before its injected %s", m.Seq, d, ab)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rtt, err := a.t.Ping(ctx, ph(b.h.ID()))
	if err != nil {
		t.Fatal(err)
	}
	if rtt < ab+ba || rtt > ab+ba+2*time.Second {
		t.Fatalf("ping RTT %s, want at least %s (both ways' injected delays)", rtt, ab+ba)
	}
	t.Logf("ping RTT %s with %s + %s injected", rtt, ab, ba)

	// Frames still held when the transport closes are dropped, and no
	// writer outlives Close (TestMain checks).
	for i := range 20 {
		if err := a.t.Send(msg(core.MsgRoute, a, b, uint64(n+1+i))); err != nil {
			t.Fatal(err)
		}
	}
	a.t.Close()
	if st := a.t.Stats(); st.Dropped[DropClosed] == 0 {
		t.Errorf("closed with frames held: dropped %v, want some DropClosed", st.Dropped)
	}
}

func TestLibp2pInjectDelayRefusesNil(t *testing.T) {
	var c config
	if err := InjectDelay(nil)(&c); err == nil {
		t.Fatal("InjectDelay(nil) accepted")
	}
}
