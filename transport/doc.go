// Package transport carries core.Messages between Pastry nodes: the wire
// format, the framing, and two implementations of one Transport interface
// (libp2p streams for real networks, an in-memory Hub for tests).
//
// # Why it looks like this
//
// The protocol core (package core) is a deterministic state machine; it
// says what to send and is told what arrived. Everything it must not know
// about, the transport owns: bytes, streams, goroutines, deadlines,
// peers' addresses, and the distrust of all of them.
//
// Wire format. pb/pastry.proto is the published schema (package
// pastry.v1): a Frame holds a Message, a Ping or a Pong; a NodeHandle is
// {node_id, peer_id, addrs}. Frames are length-prefixed (uvarint) on
// long-lived streams. The Codec encodes and decodes the schema by hand
// (google.golang.org/protobuf/encoding/protowire) rather than through the
// generated structs, for two reasons: it bounds every count and length
// before allocating (a 1 MiB frame of empty repeated handles would
// otherwise cost ~80 MB of structs), and a small message decodes in a few
// allocations. Tests check it byte for byte against the generated code.
//
// Identity on the wire. A node id is never taken from the sender: for
// every handle decoded (from, to, origin, subject, path, handles) the
// codec recomputes it from the public key in the peer ID
// (secure.NodeIDFromPeer) and rejects a handle that claims otherwise. The
// libp2p transport also requires From to be the authenticated remote peer
// of the stream and To to be this node. A verified derivation is cached
// per peer ID (exact: it is a pure function of the peer ID bytes).
//
// Streams. A new stream per request costs 3-4x the latency of a reused
// one and ~80x the allocations (go-libp2p v0.51 on loopback), so each
// neighbour gets one long-lived outbound stream carrying every frame, opened lazily and
// re-opened after an error. A write that fails on a stream opened for an
// earlier batch (the peer restarted, and reset it or closed the
// connection) is tried once more on a new stream, so that the reply to a
// restarted node's join is not lost. Nothing reads an outbound stream: the
// acceptor answers a ping on its own outbound stream to the pinger,
// through its writer like any frame, so liveness and RTT are measured over
// the path messages take (queues and writers included), not inferred from
// libp2p's connection state, and a pair of peers costs each side one
// goroutine per direction (its writer, and the reader libp2p starts for
// the inbound stream).
//
// # Limits and what happens beyond them
//
//   - Frames: DefaultMaxFrame (1 MiB + 256 KiB). A longer length prefix is
//     refused before the body is read: the stream is reset.
//   - Codec (Limits): payload 1 MiB, 512 handles, 256 path entries, 8
//     addresses per handle of at most 256 bytes. A frame that breaks them,
//     has an unknown type, a wrong-length id, a bad peer ID or a node id
//     that does not match its peer ID is dropped and counted by Reason;
//     the stream goes on. Undecodable protobuf resets the stream.
//   - Send queues: 256 frames or 8 MiB per peer; beyond, Send drops and
//     returns ErrQueueFull. Writes have a 10 s deadline; a peer that stops
//     reading has its stream reset and its queued frames dropped.
//   - Idle streams: an outbound stream idle for 2 minutes is closed, one
//     that has carried only pings, pongs, probes and probe replies after
//     10 s, and then the connection it dialed if the peer is outside the
//     state (Timeouts, PingIdleTimeout); an inbound stream idle for twice
//     the first is reset.
//   - Resource manager (HostOptions): per peer 2 streams each way for our
//     protocol, 1024 in total each way (more with memory); see
//     ProtocolBaseLimit.
//
// # Counters
//
// Stats counts messages and bytes sent and received by type, rejected
// frames by Reason, dropped messages by Drop, streams and pings. Read it
// for metrics; it is a snapshot of atomic counters.
//
// # Running many nodes in one process
//
// Every TCP connection costs two file descriptors in one process; the
// limit on the development machines is 20,000. Use QUIC
// listen addresses or the in-memory Hub for large single-process networks.
package transport
