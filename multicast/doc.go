// Package multicast is Scribe (Castro, Druschel, Kermarrec and Rowstron,
// JSAC 2002): topic-based publish/subscribe and anycast on the overlay, as
// an application on the core's Endpoint. The libp2p runtime
// (Node.Subscribe, Publish, Anycast) and the simulator (bench/sim's
// --groups experiments) run this code.
//
// # Trees
//
// A topic's id is the first 128 bits of SHA-256 of its name (TopicID); the
// live node numerically closest to it is the topic's root. A subscriber
// routes a subscription to the topic's id. Every node the subscription
// passes (Forward) that is not yet in the tree becomes a forwarder with
// the previous hop as its child, and lets the subscription go on; the
// first node already in the tree adopts the previous hop and stops it;
// the root adopts it last. A parent tells each child it adopts so
// (an ack, sent straight to it), and the child takes that node as its
// parent and watches it (Endpoint.Watch). The tree is the union of the
// subscriptions' reverse paths. A forwarder whose last child leaves, and
// that does not subscribe itself, leaves the tree (an unsubscribe to its
// parent), and so on up.
//
// A publisher routes a message to the topic's id, asking the root to say
// who it is; once the root has answered for the last message routed,
// later messages go straight to the root (Endpoint.Send). The root sends
// each message to its children, and each member to its own: one
// acknowledged direct hop per tree edge.
//
// # Failures
//
// Data doubles as the keepalive: a parent that has sent a topic's
// children nothing for about a heartbeat period (Options.HeartbeatInterval,
// default the node's) sends them a heartbeat, one message per child for
// all its idle topics. A child that hears nothing from its parent for
// ParentSilence (1.5 periods), or whose parent the core declares failed
// (the watch), joins again by routing a new subscription, which Pastry
// takes around the failed node. A parent whose message to a child is not
// acknowledged drops the child.
//
// The root sends its topic's state (its children) every period to the
// Replicas (3) nodes after it in the leaf set. When the root fails, the
// next closest node holds a copy: it takes over the tree as soon as it
// learns the root is gone (its leaf set loses it), or a publish or
// subscription for the topic reaches it, and tells the old root's
// children it is their parent. A node whose parent is silent accepts data
// from a new parent; a node that gets data from a node that is not its
// parent while its own is alive tells that node it is not its child. A
// publisher whose message to its cached root is not acknowledged routes
// it again, and a node that is sent a publish as root but no longer is
// says so (the publisher routes again) and passes the message down what
// it still has of the tree. A root that learns of a node closer to the
// topic joins the tree under it.
//
// # Delivery
//
//   - At most once: each message carries its publisher's id and a sequence
//     number, and every member remembers, per publisher, which of the last
//     64 numbers it has seen; an older copy is dropped (so a publisher
//     more than 64 messages out of order loses them, never delivers them
//     twice).
//   - In order from one publisher while the tree is stable: each hop is
//     one stream (libp2p) or one link (simulator), and a publisher sends
//     straight to the root only once the root has acknowledged the last
//     message it routed.
//   - Lost during a repair: what a failed forwarder or root had not yet
//     sent on, and what is published to a subtree whose parent failed
//     until the subtree re-joins: at most ParentSilence plus a quarter
//     period after the failure (1.75 periods), usually less (the core
//     detects a failed node that is sent to within a few hop timeouts).
//     Nothing is resent: Scribe is best effort, as in the paper.
//     Measured: docs/measurements/2026-12-07-scribe.md.
//
// # Load and anycast
//
// Options.MaxChildren bounds a node's children over all topics (256 by
// default): past it, the bottleneck remover takes the topic with the most
// children, drops its farthest child (by proximity) and sends it the
// topic's nearest other children, through one of which it joins again.
// Anycast routes to the topic and walks its tree depth first from the
// first member it meets, children before parent, until a subscriber's
// Options.Accept takes it; the origin is told where it ended.
//
// # Owned topics
//
// A topic may belong to a node: OwnedTopicID(owner, name) is the hash of
// the owner's id and the name, the owner publishes with PublishSigned
// (its Ed25519 signature over the topic, its id, the sequence number and
// the data), and its subscribers (SubscribeOwned, which names the owner)
// deliver and pass on only messages whose signature by the owner
// verifies. Over libp2p the owner's key is the one its peer ID embeds; in
// the simulator each node has a key from the seed.
//
// # What a hostile node can and cannot do
//
// Every payload is decoded strictly (wire.go; fuzzed); a node adopts as
// children only the senders of the subscriptions it sees (the transport
// vouches for them), and takes a parent only from an ack, or from data
// while its own parent is silent. An ack is taken from any node, so that
// a new root can adopt the old root's children at once: a node can make
// itself another's parent and then withhold, which its subscribers see
// only as missing sequence numbers. Tree state is bounded (MaxTopics),
// and root state is taken only from leaf-set neighbours. A root refuses a publish whose named
// publisher is not its sender, or whose signature (when it carries one)
// does not verify, so a node cannot spend another publisher's sequence
// numbers there. A forwarder can drop or withhold what it should pass on:
// its subscribers count the sequence numbers that never came
// (Stats.Missing). On an owned topic it cannot forge: a subscriber
// refuses (Stats.Forged) what the owner did not sign. On other topics a
// forwarder can inject messages into its own subtree under any
// publisher's name; use an owned topic where that matters. A malicious
// root can serve no one; the secure routing mode (not built yet) is what
// makes a route reach the true root.
//
// Like every application it is deterministic: no goroutines, no clock,
// no global randomness; its state (topics, root replicas, publishers'
// caches, anycasts) is bounded and ends with the trees.
package multicast
