package fuzz

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/routing"
	"github.com/pastrynet/pastry/simnet"
)

// stepTarget is a joined node of a small settled overlay, and the handles
// arbitrary messages may name: the overlay's members and strangers (nodes
// that never joined, and answer nothing the node sends them).
type stepTarget struct {
	nw      *simnet.Network
	node    *simnet.Host
	members []id.Handle
	handles []id.Handle // members, then strangers
}

const (
	stepMembers   = 8
	stepStrangers = 8
)

func newStepTarget(t *testing.T) *stepTarget {
	cfg := core.SimConfig()
	cfg.LeafSetSize, cfg.NeighborhoodSize = 4, 4
	nw, err := simnet.New(simnet.Options{Seed: 7, Node: cfg, Topology: simnet.Constant(5 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	if err := nw.Grow(stepMembers, 50*time.Millisecond, nil); err != nil {
		t.Fatal(err)
	}
	nw.RunFor(time.Minute)
	st := &stepTarget{nw: nw, node: nw.Node(0)}
	for _, n := range nw.Nodes() {
		st.members = append(st.members, n.Self())
	}
	st.handles = append(st.handles, st.members...)
	for i := range stepStrangers {
		var x id.ID
		x[0], x[15] = byte(0x11*i), byte(i)
		st.handles = append(st.handles, id.Handle{ID: x, Addr: fmt.Sprintf("stranger-%d", i)})
	}
	return st
}

// FuzzMachineStep runs arbitrary sequences of messages from arbitrary
// senders (members and strangers) against a joined node, with its timers
// firing between them, and checks after every input that no panic is
// reachable, its state stays within its bounds, and its leaf set, routing
// table and neighbourhood set only ever hold members or nodes it had sent
// a message to before (strangers answer nothing, so none of them can have
// answered a probe: the admission rule of core/maintain.go).
//
// The input is a sequence of records, 12 bytes each:
//
//	type, sender, flags, key (a handle's index, or a byte of a random id),
//	origin, subject, handle count (0-7), first handle, row, hops, seq, payload length
func FuzzMachineStep(f *testing.F) {
	f.Add([]byte{byte(core.MsgLeafReply), 9, 0, 3, 9, 0, 7, 8, 0, 0, 1, 0})
	f.Add([]byte{byte(core.MsgAnnounce), 10, byte(core.FlagWantReply), 0, 10, 0, 0, 0, 0, 0, 0, 0,
		byte(core.MsgProbeReply), 10, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0})
	f.Add([]byte{byte(core.MsgJoin), 11, 0, 11, 11, 0, 4, 8, 0, 1, 5, 8,
		byte(core.MsgJoinReply), 12, 0, 0, 0, 0, 7, 9, 2, 0, 0, 8})
	f.Add([]byte{byte(core.MsgHeartbeat), 1, 0, 0, 1, 0, 7, 8, 3, 0, 0, 0,
		byte(core.MsgRoute), 12, 0, 200, 12, 0, 0, 0, 0, 2, 9, 4})
	f.Fuzz(func(t *testing.T, in []byte) {
		st := newStepTarget(t)
		n := st.node
		cfg := n.Config()
		asked := map[id.ID]bool{}
		for _, h := range st.members {
			asked[h.ID] = true
		}
		take := func() {
			for _, m := range n.Ready().Messages {
				asked[m.To.ID] = true
			}
			n.Advance()
		}
		take()
		now := st.nw.Now()
		h := func(b byte) id.Handle { return st.handles[int(b)%len(st.handles)] }
		for len(in) >= 12 {
			r := in[:12]
			in = in[12:]
			m := &core.Message{
				Type:  core.MsgType(r[0] % 20), // past the last type too
				From:  h(r[1]),
				To:    n.Self(),
				Flags: core.Flags(r[2]),
				Row:   int16(int8(r[8])),
				Hops:  uint16(r[9]),
				Seq:   uint64(r[10]),
				Sent:  int64(r[10]) + 1,
			}
			if m.From.ID == n.Self().ID {
				m.From = h(r[1] + 1)
			}
			if r[3] < byte(len(st.handles)) {
				m.Key = st.handles[r[3]].ID
			} else {
				binary.BigEndian.PutUint64(m.Key[:], uint64(r[3])*0x9e3779b97f4a7c15)
			}
			if r[4] > 0 {
				m.Origin = h(r[4])
			}
			if r[5] > 0 {
				m.Subject = h(r[5])
			}
			for k := range int(r[6] % 8) {
				m.Handles = append(m.Handles, h(r[7]+byte(k)))
			}
			if r[11] > 0 {
				m.Payload = make([]byte, r[11])
				m.Payload[0] = r[11] % 3 // a lookup request or answer, sometimes
			}
			now += time.Duration(r[10]) * 10 * time.Millisecond
			_ = n.Step(now, m) // invalid input is refused with an error: that is fine
			take()
			n.Tick(now)
			take()
			check(t, n, cfg, asked)
		}
		now += 5 * time.Minute // every timer due: probes time out, maintenance runs
		n.Tick(now)
		take()
		check(t, n, cfg, asked)
	})
}

func check(t *testing.T, n *simnet.Host, cfg core.Config, asked map[id.ID]bool) {
	t.Helper()
	st := n.State()
	if st.Leaves.Len() > cfg.LeafSetSize || len(st.Neighbors.Members()) > cfg.NeighborhoodSize ||
		st.Table.Size() > st.Table.Rows()*st.Table.Cols() {
		t.Fatalf("state beyond its bounds: %s", st)
	}
	for _, e := range st.Leaves.Members(nil) {
		if !asked[e.ID] {
			t.Fatalf("leaf %s never sent anything by the node", e.ID.Short())
		}
	}
	for _, e := range st.Neighbors.Members() {
		if !asked[e.ID] {
			t.Fatalf("neighbour %s never sent anything by the node", e.ID.Short())
		}
	}
	st.Table.ForEach(func(_, _ int, e routing.Entry) bool {
		if !asked[e.ID] {
			t.Fatalf("table entry %s never sent anything by the node", e.ID.Short())
		}
		return true
	})
}
