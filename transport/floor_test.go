package transport

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peerstore"

	"github.com/pastrynet/pastry/core"
)

// The per-hop floor: what one overlay hop cannot beat on this machine. Run
//
//	go test -run='^$' -bench=Floor -benchtime=20000x ./transport/
//
// BenchmarkFloorRawStream is the bare floor (24-28 µs p50 on the
// development machines): 64-byte request/response frames on one long-lived
// TCP+Noise+yamux stream between two hosts on 127.0.0.1, written and read
// by the benchmark's own goroutine. BenchmarkFloorTransportPing adds the
// transport's writer/reader goroutine hand-offs; BenchmarkFloorTransportMessage
// adds the codec, identity checks and the handler: a 64-byte routed
// message and its reply, the cost of one hop plus its acknowledgement.

const floorProto = "/pastry-bench/floor/1.0.0"

func benchHosts(b *testing.B) (host.Host, host.Host) {
	b.Helper()
	var hs [2]host.Host
	for i := range hs {
		id := newIdentity(b, uint64(i+1))
		h, err := NewHost(DefaultHostConfig(id.priv))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { h.Close() })
		hs[i] = h
	}
	hs[0].Peerstore().AddAddrs(hs[1].ID(), hs[1].Addrs(), peerstore.PermanentAddrTTL)
	hs[1].Peerstore().AddAddrs(hs[0].ID(), hs[0].Addrs(), peerstore.PermanentAddrTTL)
	return hs[0], hs[1]
}

// reportLatency reports p50 and p99 of lat in microseconds.
func reportLatency(b *testing.B, lat []time.Duration) {
	b.Helper()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / 1e3 }
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
	b.ReportMetric(0, "ns/op") // the percentiles say it better
}

func BenchmarkFloorRawStream(b *testing.B) {
	client, server := benchHosts(b)
	server.SetStreamHandler(floorProto, func(s network.Stream) {
		defer s.Close()
		fr, fw := NewFrameReader(s, 0), NewFrameWriter(s, 0)
		for {
			p, err := fr.ReadFrame()
			if err != nil {
				return
			}
			if fw.WriteFrame(p) != nil || fw.Flush() != nil {
				return
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := client.NewStream(ctx, server.ID(), floorProto)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Reset()
	fr, fw := NewFrameReader(s, 0), NewFrameWriter(s, 0)
	req := make([]byte, 64)
	roundTrip := func() {
		if err := fw.WriteFrame(req); err != nil {
			b.Fatal(err)
		}
		if err := fw.Flush(); err != nil {
			b.Fatal(err)
		}
		if p, err := fr.ReadFrame(); err != nil || len(p) != 64 {
			b.Fatal(len(p), err)
		}
	}
	for range 200 { // warm up the connection and the pools
		roundTrip()
	}
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		roundTrip()
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	reportLatency(b, lat)
}

func BenchmarkFloorTransportPing(b *testing.B) {
	ha, hb := benchHosts(b)
	ta, err := NewLibp2p(ha, func(*core.Message) {}, Logger(quietLogger))
	if err != nil {
		b.Fatal(err)
	}
	defer ta.Close()
	tb, err := NewLibp2p(hb, func(*core.Message) {}, Logger(quietLogger))
	if err != nil {
		b.Fatal(err)
	}
	defer tb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for range 200 {
		if _, err := ta.Ping(ctx, ph(hb.ID())); err != nil {
			b.Fatal(err)
		}
	}
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		if _, err := ta.Ping(ctx, ph(hb.ID())); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	reportLatency(b, lat)
}

func BenchmarkFloorTransportMessage(b *testing.B) {
	ha, hb := benchHosts(b)
	got := make(chan *core.Message, 1)
	var tb *Libp2p
	ta, err := NewLibp2p(ha, func(m *core.Message) { got <- m }, Logger(quietLogger))
	if err != nil {
		b.Fatal(err)
	}
	defer ta.Close()
	tb, err = NewLibp2p(hb, func(m *core.Message) {
		tb.Send(&core.Message{Type: core.MsgRouteAck, From: m.To, To: m.From, Seq: m.Seq})
	}, Logger(quietLogger))
	if err != nil {
		b.Fatal(err)
	}
	defer tb.Close()
	req := &core.Message{Type: core.MsgRoute, From: ta.Local(), To: tb.Local(), Payload: make([]byte, 64)}
	roundTrip := func(seq uint64) {
		req.Seq = seq
		if err := ta.Send(req); err != nil {
			b.Fatal(err)
		}
		select {
		case m := <-got:
			if m.Seq != seq {
				b.Fatalf("ack %d for %d", m.Seq, seq)
			}
		case <-time.After(10 * time.Second):
			b.Fatal("no reply")
		}
	}
	for i := range 200 {
		roundTrip(uint64(i))
	}
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		roundTrip(uint64(1000 + i))
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	reportLatency(b, lat)
}
