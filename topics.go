package pastry

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/multicast"
	"github.com/pastrynet/pastry/secure"
)

// TopicMessage is one message published to a topic this node subscribes
// to (Scribe, package multicast).
type TopicMessage struct {
	Topic     id.ID
	Publisher id.ID  // the publishing node's id
	Seq       uint64 // the publisher's number for it, one higher each
	Data      []byte
}

// SubscriptionBuffer is how many messages a subscription holds for a
// reader that is behind; past it, messages are dropped for that
// subscription (and counted in Subscription.Dropped), so that a slow
// reader never holds up the node.
const SubscriptionBuffer = 256

// Subscription is a subscription to one topic: its messages arrive on C,
// each once, in the order their publisher sent them while the topic's
// tree is stable. Close it to unsubscribe.
type Subscription struct {
	// C delivers the messages; it is closed when the subscription is
	// closed or the node is.
	C       <-chan TopicMessage
	c       chan TopicMessage
	n       *Node
	topic   id.ID
	closing sync.Once // Close
	closeC  sync.Once // closing C, by Close or by the node's end; under topics.mu
	dropped atomic.Uint64
}

// Dropped is the number of messages dropped because C was full.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Topic is the subscription's topic id.
func (s *Subscription) Topic() id.ID { return s.topic }

// topics is the node's local subscribers, by topic; guarded by mu (the
// loop delivers, callers subscribe and close).
type topics struct {
	mu   sync.Mutex
	subs map[id.ID][]*Subscription
}

// deliver hands d to every local subscription of its topic, dropping it
// for those that are full. Loop goroutine.
func (n *Node) deliverTopic(d multicast.Delivery) {
	n.topics.mu.Lock()
	defer n.topics.mu.Unlock()
	for _, s := range n.topics.subs[d.Topic] {
		select {
		case s.c <- TopicMessage{Topic: d.Topic, Publisher: d.Publisher, Seq: d.Seq, Data: d.Data}:
		default:
			s.dropped.Add(1)
		}
	}
}

// Subscribe subscribes this node to topic (a name; its id is
// multicast.TopicID(name)) and returns the subscription. Several
// subscriptions to one topic on one node each get every message; the node
// leaves the topic's tree when the last is closed. It fails with
// core.ErrNotJoined before the node has joined.
func (n *Node) Subscribe(ctx context.Context, topic string) (*Subscription, error) {
	return n.SubscribeID(ctx, multicast.TopicID(topic))
}

// SubscribeID is Subscribe for a topic id.
func (n *Node) SubscribeID(ctx context.Context, tp id.ID) (*Subscription, error) {
	return n.subscribe(ctx, tp, func() error { return n.sc.Subscribe(tp) })
}

func (n *Node) subscribe(ctx context.Context, tp id.ID, sub func() error) (*Subscription, error) {
	c := make(chan TopicMessage, SubscriptionBuffer)
	s := &Subscription{C: c, c: c, n: n, topic: tp}
	var err error
	cerr := n.call(ctx, func() {
		if err = sub(); err != nil {
			return
		}
		n.topics.mu.Lock()
		if n.topics.subs == nil {
			n.topics.subs = map[id.ID][]*Subscription{}
		}
		n.topics.subs[tp] = append(n.topics.subs[tp], s)
		n.topics.mu.Unlock()
	})
	if cerr != nil {
		return nil, fmt.Errorf("subscribe %s: %w", tp.Short(), cerr)
	}
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", tp.Short(), err)
	}
	return s, nil
}

// SubscribeOwned subscribes to the topic name of owner (a peer; the
// topic's id is multicast.OwnedTopicID(owner's node id, name)): only
// messages owner published with PublishSigned are delivered; forgeries
// are counted in Stats.Multicast.Forged.
func (n *Node) SubscribeOwned(ctx context.Context, name string, owner peer.ID) (*Subscription, error) {
	oh, err := secure.HandleFromPeer(owner)
	if err == nil {
		oh, err = n.certifiedHandle(ctx, owner, oh)
	}
	if err != nil {
		return nil, fmt.Errorf("subscribe to %q of %s: %w", name, owner, err)
	}
	return n.subscribe(ctx, multicast.OwnedTopicID(oh.ID, name), func() error { return n.sc.SubscribeOwned(multicast.OwnedTopicID(oh.ID, name), oh) })
}

// Close ends the subscription and closes C; the node unsubscribes from the
// topic when this was its last subscription there.
func (s *Subscription) Close() error {
	var err error
	s.closing.Do(func() {
		err = s.n.call(context.Background(), func() {
			s.n.topics.mu.Lock()
			subs := s.n.topics.subs[s.topic]
			for i, x := range subs {
				if x == s {
					subs = append(subs[:i:i], subs[i+1:]...)
					break
				}
			}
			if len(subs) == 0 {
				delete(s.n.topics.subs, s.topic)
				s.n.sc.Unsubscribe(s.topic)
			} else {
				s.n.topics.subs[s.topic] = subs
			}
			s.closeC.Do(func() { close(s.c) })
			s.n.topics.mu.Unlock()
		})
		if errors.Is(err, ErrClosed) {
			err = nil // C is closed with the node (closeTopics)
		}
	})
	return err
}

// closeTopics closes every subscription's channel: the node stopped.
// Called once the loop has exited.
func (n *Node) closeTopics() {
	n.topics.mu.Lock()
	defer n.topics.mu.Unlock()
	for _, subs := range n.topics.subs {
		for _, s := range subs {
			s.closeC.Do(func() { close(s.c) })
		}
	}
	n.topics.subs = nil
}

// Publish sends data to every subscriber of topic (a name): to the
// topic's root, which sends it down the topic's tree. It returns once the
// message has left this node; delivery is not confirmed (package
// multicast says what a repair can lose). data is at most 64 KiB.
func (n *Node) Publish(ctx context.Context, topic string, data []byte) error {
	return n.PublishID(ctx, multicast.TopicID(topic), data)
}

// PublishID is Publish for a topic id.
func (n *Node) PublishID(ctx context.Context, tp id.ID, data []byte) error {
	return n.publish(ctx, tp, data, false)
}

// PublishSigned publishes data, signed with the node's key, to this
// node's own topic name (multicast.OwnedTopicID(n.ID(), name)), whose
// subscribers (SubscribeOwned) deliver nothing else.
func (n *Node) PublishSigned(ctx context.Context, name string, data []byte) error {
	return n.publish(ctx, multicast.OwnedTopicID(n.ID(), name), data, true)
}

func (n *Node) publish(ctx context.Context, tp id.ID, data []byte, signed bool) error {
	data = append([]byte(nil), data...)
	var err error
	pub := n.sc.Publish
	if signed {
		pub = n.sc.PublishSigned
	}
	if cerr := n.call(ctx, func() { err = pub(tp, data) }); cerr != nil {
		return fmt.Errorf("publish to %s: %w", tp.Short(), cerr)
	}
	if err != nil {
		return fmt.Errorf("publish to %s: %w", tp.Short(), err)
	}
	return nil
}

// Anycast walks topic's tree until a subscriber whose anycast policy
// (WithAnycastPolicy) accepts payload, and returns it; Found is false when
// none did.
func (n *Node) Anycast(ctx context.Context, topic string, payload []byte) (multicast.AnycastResult, error) {
	tp := multicast.TopicID(topic)
	payload = append([]byte(nil), payload...)
	return await(n, ctx, "anycast to "+tp.Short(), func(done func(multicast.AnycastResult, error)) error {
		return n.sc.Anycast(tp, payload, done)
	})
}

// TopicsInfo lists this node's part in the trees of the topics it belongs
// to (subscriber, forwarder or root).
func (n *Node) TopicsInfo(ctx context.Context) ([]multicast.TopicInfo, multicast.Stats, error) {
	var out []multicast.TopicInfo
	var st multicast.Stats
	err := n.call(ctx, func() { out, st = n.sc.Topics(), n.sc.Stats() })
	return out, st, err
}
