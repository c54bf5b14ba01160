package core_test

import (
	"encoding/binary"
	"hash/fnv"
	"testing"
	"time"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/routing"
	"github.com/pastrynet/pastry/simnet"
)

// traceRun drives a network through joins, lookups, loss, crashes, a
// partition and a leave, hashing every message handed to the network (with
// the sender and the virtual time) and the final routing state.
func traceRun(t *testing.T, seed uint64) (msgs uint64, sum uint64) {
	t.Helper()
	h := fnv.New64a()
	var nw *simnet.Network
	var buf []byte
	u64 := func(v uint64) { buf = binary.BigEndian.AppendUint64(buf, v) }
	hd := func(x id.Handle) { buf = append(buf, x.ID[:]...); buf = append(buf, x.Addr...) }
	onSend := func(from int, m *core.Message) {
		buf = buf[:0]
		u64(uint64(nw.Now()))
		u64(uint64(from))
		buf = append(buf, byte(m.Type), byte(m.Flags))
		hd(m.From)
		hd(m.To)
		u64(m.Seq)
		buf = append(buf, m.Key[:]...)
		hd(m.Origin)
		u64(uint64(m.App))
		buf = append(buf, m.Payload...)
		u64(uint64(m.Hops))
		for _, p := range m.Path {
			hd(p)
		}
		u64(uint64(m.Sent))
		u64(uint64(m.Row))
		for _, x := range m.Handles {
			hd(x)
		}
		hd(m.Subject)
		h.Write(buf)
		msgs++
	}
	var err error
	nw, err = simnet.New(simnet.Options{Seed: seed, Node: leafCfg(8), Topology: simnet.NewPlane(), DropRate: 0.02, OnSend: onSend})
	if err != nil {
		t.Fatal(err)
	}
	l := simnet.NewLookups(nw)
	if err := nw.Grow(40, 300*time.Millisecond, l); err != nil {
		t.Fatal(err)
	}
	nw.RunFor(30 * time.Second)
	lookups := func(k int) {
		var live []int
		for _, n := range nw.Nodes() {
			if n.Alive() && n.Status() == core.StatusJoined {
				live = append(live, n.Index)
			}
		}
		for range k {
			if _, err := l.Lookup(live[nw.Rand().IntN(len(live))], id.Random(nw.Rand())); err != nil {
				t.Fatal(err)
			}
		}
	}
	lookups(100)
	nw.Crash(4)
	nw.Crash(20)
	lookups(100)
	nw.RunFor(20 * time.Second)
	nw.Partition([]int{0, 1, 2, 3, 5, 6, 7, 8, 9, 10})
	lookups(50)
	nw.RunFor(20 * time.Second)
	nw.Heal()
	if err := nw.Leave(11); err != nil {
		t.Fatal(err)
	}
	lookups(50)
	nw.RunFor(time.Minute)
	for _, n := range nw.Nodes() {
		buf = buf[:0]
		for _, e := range n.State().Leaves.Members(nil) {
			hd(e.Handle)
		}
		n.State().Table.ForEach(func(r, c int, e routing.Entry) bool { hd(e.Handle); return true })
		st := n.Stats()
		u64(st.Delivered)
		u64(st.Reroutes)
		h.Write(buf)
	}
	u64(uint64(l.Delivered))
	u64(uint64(l.Correct))
	u64(nw.Events)
	h.Write(buf)
	return msgs, h.Sum64()
}

// TestDeterminism: the same seed gives the same run, message for message;
// another seed gives another run. This is what lets a seed reproduce a
// simulated failure in the real code (DESIGN principle 1).
func TestDeterminism(t *testing.T) {
	n1, h1 := traceRun(t, 77)
	n2, h2 := traceRun(t, 77)
	if n1 != n2 || h1 != h2 {
		t.Fatalf("seed 77 twice: %d messages hash %x, then %d messages hash %x", n1, h1, n2, h2)
	}
	if n1 < 2000 {
		t.Fatalf("only %d messages: the workload is not exercising the protocol", n1)
	}
	n3, h3 := traceRun(t, 78)
	if h3 == h1 {
		t.Fatalf("seeds 77 and 78 gave the same trace (%d and %d messages)", n1, n3)
	}
}
