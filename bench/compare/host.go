package main

import (
	"context"
	"strings"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// The protocols whose streams countingHost counts, by stream protocol.
const (
	protoPastry = iota
	protoKad
	protoGossip
	protoOther
	numProtos
)

// byteCounters are the bytes written on streams of each protocol, by every
// host of the run: the same measure for both protocols (what each wrote on
// its libp2p streams, length prefixes included; below that, the
// security and muxer framing is the same for both and not counted).
type byteCounters struct {
	bytes  [numProtos]atomic.Uint64
	writes [numProtos]atomic.Uint64
}

func (c *byteCounters) snapshot() (b, w [numProtos]uint64) {
	for i := range numProtos {
		b[i], w[i] = c.bytes[i].Load(), c.writes[i].Load()
	}
	return b, w
}

// classify maps a protocol ID to its counter.
func classify(p protocol.ID) int {
	s := string(p)
	switch {
	case strings.HasPrefix(s, kadPrefix+"/kad/"):
		return protoKad
	case strings.Contains(s, "/pastry/"):
		return protoPastry
	case strings.HasPrefix(s, "/meshsub/"), strings.HasPrefix(s, "/floodsub/"):
		return protoGossip
	}
	return protoOther
}

// countingHost is a libp2p host that counts the bytes written on the
// streams it opens and accepts. Both protocols are given it in place of
// the host, so both are measured the same way; everything but streams is
// the host's own.
type countingHost struct {
	host.Host
	c *byteCounters
}

func (h *countingHost) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	s, err := h.Host.NewStream(ctx, p, pids...)
	if err != nil {
		return nil, err
	}
	k := protoOther
	if len(pids) > 0 {
		k = classify(pids[0])
	}
	return &countingStream{Stream: s, c: h.c, k: k}, nil
}

func (h *countingHost) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	k := classify(pid)
	h.Host.SetStreamHandler(pid, func(s network.Stream) {
		handler(&countingStream{Stream: s, c: h.c, k: k})
	})
}

type countingStream struct {
	network.Stream
	c *byteCounters
	k int
}

func (s *countingStream) Write(b []byte) (int, error) {
	n, err := s.Stream.Write(b)
	s.c.bytes[s.k].Add(uint64(n))
	s.c.writes[s.k].Add(1)
	return n, err
}
