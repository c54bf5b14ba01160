// Package pastry attaches a Pastry overlay to a libp2p host.
//
//	h, _ := libp2p.New(...)                 // an Ed25519 identity
//	n, _ := pastry.New(h)                   // speaks /pastry/1.0.0 on h
//	_ = n.Join(ctx, bootstrapAddrInfo)      // or no argument: a new overlay
//	res, _ := n.Lookup(ctx, key)            // root (id and peer ID), hops, path, latency
//	_ = h.Connect(ctx, peer.AddrInfo{ID: res.RootPeer}) // talk to the key's root
//	_ = n.Route(ctx, key, appID, payload)   // to the key's root
//	defer n.Close()
//
// The node's id is derived from the host's public key (secure.NodeID), and
// every node handle received is checked against its peer ID by the
// transport before the protocol sees it.
//
// One goroutine per node (the event loop) owns the protocol core
// (core.Machine): it feeds it received messages, timer ticks and local calls,
// and sends what the core asks. Everything else reads the routing state
// through its lock-free snapshots, or asks the loop. Applications register
// with RegisterApplication and receive the Common API upcalls (Deliver,
// Forward, Update) on the loop goroutine: they must not block.
package pastry
