package pastry

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/transport"
)

// MetricsScope is the instrumentation scope name under which
// RegisterMetrics creates its instruments.
const MetricsScope = "github.com/pastrynet/pastry"

// metricsStatsTimeout bounds how long one collection waits for the event
// loop's counters; a stuck loop must not hang a scrape.
const metricsStatsTimeout = 2 * time.Second

// RegisterMetrics creates the node's OpenTelemetry instruments on meter.
// They are all observable: nothing is counted on the hot path, and one
// callback reads Info (lock-free) and Stats (one round trip through the
// event loop) when the meter's reader collects, e.g. at a Prometheus
// scrape. Unregister the returned registration (or shut the meter
// provider down) before closing the node.
//
// Instruments (Prometheus names after the exporter's translation):
//
//	pastry.routing_table.row.entries{row}    gauge: filled entries per row (table fill)
//	pastry.routing_table.entries             gauge: filled entries in all rows
//	pastry.leaf_set.size{side}               gauge: leaf-set members, side left|right
//	pastry.neighborhood_set.size             gauge
//	pastry.network.size_estimate             gauge: N estimated from leaf-set density
//	pastry.node.joined                       gauge: 1 while joined, else 0
//	pastry.libp2p.connections                gauge: the host's open connections (libp2p only)
//	pastry.libp2p.peers                      gauge: peers the host is connected to (libp2p only)
//	pastry.libp2p.measure_conns_closed       counter: connections a ping or probe opened, closed unused
//	pastry.libp2p.measures_throttled         counter: proximity pings not started: the dial budget of the address or of the handle's sender was spent
//	pastry.route.window                      gauge: the window pacing Route and Lookup (WithRouteWindow)
//	pastry.route.queued                      gauge: messages Route and Lookup queued, not yet sent
//	pastry.messages.sent{type}               counter: frames written, by message type
//	pastry.messages.received{type}           counter: frames read, by message type
//	pastry.transport.sent{type}              counter, bytes (length prefix included)
//	pastry.transport.received{type}          counter, bytes
//	pastry.route.delivered{hops}             counter: routed messages delivered here
//	                                          after hops overlay hops ("15+": 15 or more)
//	pastry.direct.delivered                  counter: messages sent straight here (Endpoint.Send) delivered
//	pastry.route.forwarded                   counter
//	pastry.route.hop_timeouts                counter: next hops that did not ack in time
//	pastry.route.hops_unsent                 counter: hops the transport could not send, re-routed at once
//	pastry.route.held                        counter: messages held while joining, until the neighbours knew of us
//	pastry.route.reroutes                    counter
//	pastry.route.spurious_timeouts           counter: hop timeouts acked later (back-off)
//	pastry.route.duplicates                  counter: other copies of handled messages, dropped
//	pastry.route.loops                       counter: handled messages come back, re-routed
//	pastry.route.dropped                     counter: routed messages given up
//	pastry.transport.rejected{reason}        counter: received frames/handles refused
//	pastry.transport.dropped{reason}         counter: outgoing messages not sent
//	pastry.transport.addrs_refused           counter: learned addresses the address filter refused
//	pastry.transport.addrs_throttled         counter: second-hand addresses not kept: the sender's budget was spent, or too many held
//	pastry.transport.sends_throttled         counter: messages not sent: a dial beyond the budget of the peer that caused it
//	pastry.transport.write_retries           counter: batches written again on a new stream (the old one was gone)
//	pastry.transport.streams{direction}      counter: protocol streams opened (outbound) and accepted (inbound)
//	pastry.transport.stream_resets           counter: streams reset because of an error
//	pastry.transport.pings                   counter: pings written
//	pastry.transport.pongs{late}             counter: pongs received, late ones answering no waiting ping
//	pastry.core.rejected                     counter: messages the protocol refused
//	pastry.secure.certs_rejected{reason}     counter: certificates refused in certificate mode
//	pastry.secure.puzzle_rejected            counter: handles refused by the identity puzzle (open mode)
//	pastry.secure.diversity_rejected         counter: table/neighbourhood offers refused by address diversity
//	pastry.secure.certs_batched              counter: certificates checked in batches
//	pastry.inbox.drops                       counter: received messages dropped, loop behind
//	pastry.inbox.rate_limited                counter: routed messages dropped: their sender exceeded its rate
//	pastry.peers.suspected                   counter
//	pastry.peers.declared_dead               counter
//	pastry.lookup.duration{result}           histogram, seconds: Lookup calls (the API's /v1/route
//	                                          included) from their start to the answer, result ok, or
//	                                          to their error, result failed
//
// All but the last are observable. The lookup histogram is recorded by
// each Lookup call (one Record, no allocation); Unregister stops it.
//
// The delivered-hops distribution is a counter per hop count rather than a
// histogram: OpenTelemetry has no observable histogram, and replaying the
// core's cumulative array into a synchronous one would cost a call per
// delivery. The core's buckets are exact integers, so a counter per bucket
// loses nothing; sum(pastry_route_delivered_total) is the total and the
// mean is the hops-weighted sum over it.
func (n *Node) RegisterMetrics(meter metric.Meter) (metric.Registration, error) {
	if meter == nil {
		return nil, errors.New("pastry: RegisterMetrics needs a meter")
	}
	m := &nodeMetrics{n: n}
	if err := m.create(meter); err != nil {
		return nil, fmt.Errorf("pastry: create instruments: %w", err)
	}
	reg, err := meter.RegisterCallback(m.observe, m.observables...)
	if err != nil {
		return nil, fmt.Errorf("pastry: register metrics callback: %w", err)
	}
	rec, err := newLookupRecorder(meter)
	if err != nil {
		reg.Unregister()
		return nil, fmt.Errorf("pastry: create instruments: %w", err)
	}
	n.lookupRec.Store(rec)
	return &registration{Registration: reg, n: n, rec: rec}, nil
}

// registration is RegisterMetrics' registration: Unregister also stops
// the lookup histogram it started.
type registration struct {
	metric.Registration
	n   *Node
	rec *lookupRecorder
}

func (r *registration) Unregister() error {
	r.n.lookupRec.CompareAndSwap(r.rec, nil)
	return r.Registration.Unregister()
}

// lookupBuckets are the lookup histogram's bucket bounds, in seconds: a
// lookup on a LAN or a loopback devnet takes about a millisecond, one
// across the internet tens to hundreds, one that times out seconds.
var lookupBuckets = []float64{0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10}

// lookupRecorder is the lookup-duration histogram with its two attribute
// sets made once.
type lookupRecorder struct {
	h          metric.Float64Histogram
	ok, failed metric.RecordOption
}

func newLookupRecorder(meter metric.Meter) (*lookupRecorder, error) {
	h, err := meter.Float64Histogram("pastry.lookup.duration", metric.WithUnit("s"),
		metric.WithDescription("Lookup calls (the HTTP API's /v1/route included), from their start to the root's answer (result ok) or to their error (result failed)."),
		metric.WithExplicitBucketBoundaries(lookupBuckets...))
	if err != nil {
		return nil, err
	}
	return &lookupRecorder{
		h:      h,
		ok:     metric.WithAttributeSet(attribute.NewSet(attribute.String("result", "ok"))),
		failed: metric.WithAttributeSet(attribute.NewSet(attribute.String("result", "failed"))),
	}, nil
}

func (r *lookupRecorder) record(d time.Duration, ok bool) {
	opt := r.failed
	if ok {
		opt = r.ok
	}
	r.h.Record(context.Background(), d.Seconds(), opt)
}

// nodeMetrics holds the instruments and their precomputed attribute sets,
// so a collection allocates no attributes.
type nodeMetrics struct {
	n           *Node
	observables []metric.Observable

	rowEntries, tableEntries, leafSize, neighbors, joined metric.Int64ObservableGauge
	conns, peers, routeWindow, routesQueued               metric.Int64ObservableGauge
	networkSize                                           metric.Float64ObservableGauge

	msgsSent, msgsRecv, bytesSent, bytesRecv        metric.Int64ObservableCounter
	delivered, forwarded, hopTimeouts, reroutes     metric.Int64ObservableCounter
	routeDropped, rejected, trDropped, coreRejected metric.Int64ObservableCounter
	inboxDrops, suspected, declaredDead             metric.Int64ObservableCounter
	rateLimited                                     metric.Int64ObservableCounter
	routeRefused, addrsRefused, measureClosed       metric.Int64ObservableCounter
	measureThrottled, writeRetries                  metric.Int64ObservableCounter
	streams, streamResets, pings, pongs             metric.Int64ObservableCounter
	spurious, duplicates, loops, hopsUnsent, held   metric.Int64ObservableCounter
	directDelivered, addrsThrottled, sendsThrottled metric.Int64ObservableCounter
	mcTopics, mcChildren, mcDepth, mcReplicas       metric.Int64ObservableGauge
	mcDelivered, mcForwarded, mcRepairs, mcHB       metric.Int64ObservableCounter
	mcPublished, mcDuplicates, mcTakeovers          metric.Int64ObservableCounter
	mcRedirects, mcRefused                          metric.Int64ObservableCounter
	stRecords, stBytes                              metric.Int64ObservableGauge
	pastStored, pastRefused, pastQuorumFails        metric.Int64ObservableCounter
	pastMoved, pastRepairs, pastSync, pastHandedOff metric.Int64ObservableCounter
	pastRateLimited                                 metric.Int64ObservableCounter
	pastFull, pastOverQuota, pastDiverted           metric.Int64ObservableCounter
	pastCacheHits                                   metric.Int64ObservableCounter
	typeAttrs                                       [transport.MsgTypeSlots]attribute.Set
	hopAttrs                                        [core.HopBuckets]attribute.Set
	reasonAttrs                                     [transport.NumReasons]attribute.Set
	dropAttrs                                       [transport.NumDrops]attribute.Set
	rowAttrs                                        [id.Bits]attribute.Set // b >= 1: at most 128 rows
	leftAttr, rightAttr                             attribute.Set
	outAttr, inAttr, onTime, late                   attribute.Set
	sec                                             secureMetrics // metrics_secure.go
}

func (m *nodeMetrics) create(meter metric.Meter) error {
	var errs []error
	gauge := func(name, desc string) metric.Int64ObservableGauge {
		g, err := meter.Int64ObservableGauge(name, metric.WithDescription(desc))
		errs = append(errs, err)
		m.observables = append(m.observables, g)
		return g
	}
	counter := func(name, unit, desc string) metric.Int64ObservableCounter {
		c, err := meter.Int64ObservableCounter(name, metric.WithDescription(desc), metric.WithUnit(unit))
		errs = append(errs, err)
		m.observables = append(m.observables, c)
		return c
	}
	m.rowEntries = gauge("pastry.routing_table.row.entries", "Filled routing-table entries per row.")
	m.tableEntries = gauge("pastry.routing_table.entries", "Filled routing-table entries in all rows.")
	m.leafSize = gauge("pastry.leaf_set.size", "Leaf-set members on each side.")
	m.neighbors = gauge("pastry.neighborhood_set.size", "Neighbourhood-set members.")
	m.joined = gauge("pastry.node.joined", "1 while the node is a member of the overlay, else 0.")
	m.conns = gauge("pastry.libp2p.connections", "Open connections of the node's libp2p host (all protocols).")
	m.peers = gauge("pastry.libp2p.peers", "Peers the node's libp2p host is connected to.")
	m.routeWindow = gauge("pastry.route.window", "The window pacing this node's own routes: at most this many of its hops wait for an ack (0: not paced).")
	m.routesQueued = gauge("pastry.route.queued", "Messages Route and Lookup queued that wait for the route window or the event loop.")
	ns, err := meter.Float64ObservableGauge("pastry.network.size_estimate",
		metric.WithDescription("Overlay size estimated from the leaf set's density."))
	errs = append(errs, err)
	m.networkSize = ns
	m.observables = append(m.observables, ns)

	m.msgsSent = counter("pastry.messages.sent", "{message}", "Messages written to the wire, by type.")
	m.msgsRecv = counter("pastry.messages.received", "{message}", "Messages read from the wire, by type.")
	m.bytesSent = counter("pastry.transport.sent", "By", "Bytes written to the wire, by message type.")
	m.bytesRecv = counter("pastry.transport.received", "By", "Bytes read from the wire, by message type.")
	m.delivered = counter("pastry.route.delivered", "{message}", "Routed messages delivered at this node, by overlay hops taken.")
	m.directDelivered = counter("pastry.direct.delivered", "{message}", "Messages sent straight to this node by an application (Endpoint.Send; the lookup's answers among them), delivered here.")
	m.forwarded = counter("pastry.route.forwarded", "{message}", "Routed messages forwarded by this node.")
	m.hopTimeouts = counter("pastry.route.hop_timeouts", "{timeout}", "Next hops that did not acknowledge in time.")
	m.hopsUnsent = counter("pastry.route.hops_unsent", "{hop}", "Next hops the transport reported it could not send (no connection, write failed); re-routed at once, without waiting for the hop timeout.")
	m.held = counter("pastry.route.held", "{message}", "Routed messages this node was the root of while it joined, held until its immediate neighbours had acknowledged its arrival.")
	m.reroutes = counter("pastry.route.reroutes", "{reroute}", "Routed messages re-routed around a suspected next hop.")
	m.spurious = counter("pastry.route.spurious_timeouts", "{timeout}", "Hop timeouts whose acknowledgement came later; each backs hop timeouts off.")
	m.duplicates = counter("pastry.route.duplicates", "{message}", "Routed messages that arrived again as another copy of one this node handled; acknowledged, not forwarded.")
	m.loops = counter("pastry.route.loops", "{message}", "Routed messages that came back to this node after it had forwarded them; routed again.")
	m.routeDropped = counter("pastry.route.dropped", "{message}", "Routed messages given up (reroutes or hops exhausted).")
	m.rejected = counter("pastry.transport.rejected", "{frame}", "Received frames or handles refused as invalid, by reason.")
	m.trDropped = counter("pastry.transport.dropped", "{message}", "Outgoing messages the transport did not send, by reason.")
	m.measureClosed = counter("pastry.libp2p.measure_conns_closed", "{connection}", "Connections a proximity measurement, a ping or a probe opened to a peer the routing state did not take, closed once no stream used them (libp2p only).")
	m.measureThrottled = counter("pastry.libp2p.measures_throttled", "{measurement}", "Proximity measurements not started because dialling the peer would have exceeded the dial budget of its address (16 at once per IPv4 address, IPv6 /64 or DNS domain, 16 more a minute) or of the peer that sent its handle (128 at once, 64 more a minute).")
	m.addrsThrottled = counter("pastry.transport.addrs_throttled", "{address}", "Addresses of peers named by others' handles not added to the peerstore: the sender's budget for new unverified peers was spent, or too many were held.")
	m.sendsThrottled = counter("pastry.transport.sends_throttled", "{message}", "Messages not sent because they needed a new connection beyond the dial budget of the peer whose message caused them.")
	m.addrsRefused = counter("pastry.transport.addrs_refused", "{address}", "Addresses learned from received handles that the address filter (policy) refused.")
	m.writeRetries = counter("pastry.transport.write_retries", "{batch}", "Batches of frames written again on a new stream because the peer's stream was found gone when written to (the peer's transport closed, or the peer restarted).")
	m.streams = counter("pastry.transport.streams", "{stream}", "Streams of the Pastry protocol opened to peers (direction outbound) and accepted from them (inbound); one per peer and direction while in use.")
	m.streamResets = counter("pastry.transport.stream_resets", "{stream}", "Streams reset because of an error (a write failed or timed out, a frame was refused, an inbound stream idled out).")
	m.pings = counter("pastry.transport.pings", "{ping}", "Proximity and liveness pings written.")
	m.pongs = counter("pastry.transport.pongs", "{pong}", "Pongs received, by whether a ping still waited for them (late: no).")
	m.coreRejected = counter("pastry.core.rejected", "{message}", "Received messages the protocol refused as invalid.")
	m.inboxDrops = counter("pastry.inbox.drops", "{message}", "Received messages dropped because the event loop was behind (the sender's queue, or the whole inbox, was full).")
	m.rateLimited = counter("pastry.inbox.rate_limited", "{message}", "Received routed messages dropped unacknowledged because their sender exceeded its rate (WithRouteRateLimit).")
	m.routeRefused = counter("pastry.route.refused", "{message}", "Messages Route queued that the protocol refused when their turn came (the node had stopped being joined).")
	m.suspected = counter("pastry.peers.suspected", "{peer}", "Peers suspected of failure.")
	m.declaredDead = counter("pastry.peers.declared_dead", "{peer}", "Peers declared failed after unanswered probes.")
	m.mcTopics = gauge("pastry.multicast.topics", "Topics whose tree this node is a member of (subscriber, forwarder or root).")
	m.mcChildren = gauge("pastry.multicast.children", "Children of this node in the topics' trees, over all topics.")
	m.mcDepth = gauge("pastry.multicast.tree_depth", "The deepest position of this node in a topic's tree (the root is at 0).")
	m.mcReplicas = gauge("pastry.multicast.root_replicas", "Root states this node holds for the roots of topics, to take over when they fail.")
	m.mcDelivered = counter("pastry.multicast.delivered", "{message}", "Published messages delivered to this node's subscriptions.")
	m.mcForwarded = counter("pastry.multicast.forwarded", "{message}", "Published messages sent to children in the topics' trees.")
	m.mcPublished = counter("pastry.multicast.published", "{message}", "Messages published from this node.")
	m.mcRepairs = counter("pastry.multicast.repairs", "{repair}", "Joins of a topic's tree again after the parent failed or fell silent.")
	m.mcHB = counter("pastry.multicast.heartbeats", "{message}", "Heartbeats sent to children on idle trees.")
	m.mcDuplicates = counter("pastry.multicast.duplicates", "{message}", "Copies of published messages not delivered or forwarded again.")
	m.mcTakeovers = counter("pastry.multicast.takeovers", "{topic}", "Topics whose root this node became from a failed root's replicated state.")
	m.mcRedirects = counter("pastry.multicast.redirects", "{child}", "Children handed to their siblings by the bottleneck remover.")
	m.mcRefused = counter("pastry.multicast.refused", "{message}", "Multicast messages refused: from a node this node is not the child of, or naming another publisher.")
	m.stRecords = gauge("pastry.store.records", "Records this node holds as a replica (tombstones included).")
	m.stBytes = gauge("pastry.store.bytes", "Bytes of the records this node holds.")
	m.pastStored = counter("pastry.records.stored", "{record}", "Records stored here: writes, repairs and handoffs.")
	m.pastRefused = counter("pastry.records.refused", "{record}", "Records refused: invalid, stale, conflicting, outside this node's range, or over capacity or quota.")
	m.pastQuorumFails = counter("pastry.records.quorum_failures", "{write}", "Writes coordinated here that did not reach W receipts in time.")
	m.pastMoved = counter("pastry.records.replicas_moved", "{record}", "Records pushed to a neighbour that lacked them (anti-entropy).")
	m.pastRepairs = counter("pastry.records.read_repairs", "{record}", "Copies sent by read repair to replicas that answered with an older version or none.")
	m.pastSync = counter("pastry.records.sync_rounds", "{summary}", "Anti-entropy range summaries sent to leaf-set neighbours.")
	m.pastRateLimited = counter("pastry.records.rate_limited", "{write}", "Writes refused at their key's root because their origin exceeded its write rate.")
	m.pastHandedOff = counter("pastry.records.handed_off", "{record}", "Records deleted here after more than K/2 of their replicas confirmed holding them.")
	m.pastFull = counter("pastry.records.full", "{record}", "Records refused for want of space here (or, diverting, on a leaf-set neighbour).")
	m.pastOverQuota = counter("pastry.records.over_quota", "{record}", "Records refused because their owner's quota here would be exceeded.")
	m.pastDiverted = counter("pastry.records.diverted", "{record}", "Replicas this node diverted to a leaf-set neighbour with space (PAST's replica diversion).")
	m.pastCacheHits = counter("pastry.records.cache_hits", "{read}", "Reads answered from this node's cache of records along routes.")
	m.sec.create(counter)
	if err := errors.Join(errs...); err != nil {
		return err
	}

	for i := range m.typeAttrs {
		m.typeAttrs[i] = attribute.NewSet(attribute.String("type", core.MsgType(i).String()))
	}
	for i := range m.hopAttrs {
		h := strconv.Itoa(i)
		if i == core.HopBuckets-1 {
			h += "+"
		}
		m.hopAttrs[i] = attribute.NewSet(attribute.String("hops", h))
	}
	for i := range m.reasonAttrs {
		m.reasonAttrs[i] = attribute.NewSet(attribute.String("reason", transport.Reason(i).String()))
	}
	for i := range m.dropAttrs {
		m.dropAttrs[i] = attribute.NewSet(attribute.String("reason", transport.Drop(i).String()))
	}
	for i := range m.rowAttrs {
		m.rowAttrs[i] = attribute.NewSet(attribute.Int("row", i))
	}
	m.outAttr = attribute.NewSet(attribute.String("direction", "outbound"))
	m.inAttr = attribute.NewSet(attribute.String("direction", "inbound"))
	m.onTime = attribute.NewSet(attribute.Bool("late", false))
	m.late = attribute.NewSet(attribute.Bool("late", true))
	m.leftAttr = attribute.NewSet(attribute.String("side", "left"))
	m.rightAttr = attribute.NewSet(attribute.String("side", "right"))
	return nil
}

// clampInt64 converts a counter for the int64 instruments.
func clampInt64(v uint64) int64 { return int64(min(v, math.MaxInt64)) }

// observe is the collection callback: one Info and one Stats per scrape.
// It only reads m, so concurrent collections are safe.
func (m *nodeMetrics) observe(ctx context.Context, o metric.Observer) error {
	inf := m.n.Info()
	for r, row := range inf.Rows[:min(len(inf.Rows), len(m.rowAttrs))] {
		o.ObserveInt64(m.rowEntries, int64(len(row)), metric.WithAttributeSet(m.rowAttrs[r]))
	}
	o.ObserveInt64(m.tableEntries, int64(inf.TableEntries))
	o.ObserveInt64(m.leafSize, int64(len(inf.Left)), metric.WithAttributeSet(m.leftAttr))
	o.ObserveInt64(m.leafSize, int64(len(inf.Right)), metric.WithAttributeSet(m.rightAttr))
	o.ObserveInt64(m.neighbors, int64(len(inf.Neighbors)))
	joined := int64(0)
	if inf.Status == core.StatusJoined {
		joined = 1
	}
	o.ObserveInt64(m.joined, joined)
	o.ObserveFloat64(m.networkSize, inf.NetworkSize)
	if m.n.host != nil {
		nw := m.n.host.Network()
		o.ObserveInt64(m.conns, int64(len(nw.Conns())))
		o.ObserveInt64(m.peers, int64(len(nw.Peers())))
	}

	ctx, cancel := context.WithTimeout(ctx, metricsStatsTimeout)
	defer cancel()
	st, err := m.n.Stats(ctx)
	// The transport's counters and the runtime's are valid even when the
	// loop did not answer (closed or stuck); the core's are then zero and
	// not reported, so that counters never appear to go backwards.
	tr := st.Transport
	for i := range tr.SentMsgs {
		if tr.SentMsgs[i] == 0 && tr.RecvMsgs[i] == 0 {
			continue
		}
		a := metric.WithAttributeSet(m.typeAttrs[i])
		o.ObserveInt64(m.msgsSent, clampInt64(tr.SentMsgs[i]), a)
		o.ObserveInt64(m.msgsRecv, clampInt64(tr.RecvMsgs[i]), a)
		o.ObserveInt64(m.bytesSent, clampInt64(tr.SentBytes[i]), a)
		o.ObserveInt64(m.bytesRecv, clampInt64(tr.RecvBytes[i]), a)
	}
	for i, v := range tr.Rejected {
		o.ObserveInt64(m.rejected, clampInt64(v), metric.WithAttributeSet(m.reasonAttrs[i]))
	}
	for i, v := range tr.Dropped {
		o.ObserveInt64(m.trDropped, clampInt64(v), metric.WithAttributeSet(m.dropAttrs[i]))
	}
	o.ObserveInt64(m.addrsRefused, clampInt64(tr.AddrsRefused))
	o.ObserveInt64(m.addrsThrottled, clampInt64(tr.AddrsThrottled))
	o.ObserveInt64(m.sendsThrottled, clampInt64(tr.SendsThrottled))
	o.ObserveInt64(m.writeRetries, clampInt64(tr.WriteRetries))
	o.ObserveInt64(m.streams, clampInt64(tr.StreamsOpened), metric.WithAttributeSet(m.outAttr))
	o.ObserveInt64(m.streams, clampInt64(tr.StreamsAccepted), metric.WithAttributeSet(m.inAttr))
	o.ObserveInt64(m.streamResets, clampInt64(tr.StreamResets))
	o.ObserveInt64(m.pings, clampInt64(tr.PingsSent))
	o.ObserveInt64(m.pongs, clampInt64(tr.PongsReceived), metric.WithAttributeSet(m.onTime))
	o.ObserveInt64(m.pongs, clampInt64(tr.PongsLate), metric.WithAttributeSet(m.late))
	o.ObserveInt64(m.measureClosed, clampInt64(st.MeasureConnsClosed))
	o.ObserveInt64(m.measureThrottled, clampInt64(st.MeasuresThrottled))
	o.ObserveInt64(m.inboxDrops, clampInt64(st.InboxDrops))
	o.ObserveInt64(m.rateLimited, clampInt64(st.RateLimited))
	o.ObserveInt64(m.routeRefused, clampInt64(st.RouteErrors))
	o.ObserveInt64(m.routesQueued, int64(st.RoutesQueued))
	m.sec.observeTransport(o, tr.Security)
	m.sec.observeLookups(o, &m.n.secLookups)
	if err != nil {
		return nil
	}
	o.ObserveInt64(m.sec.diversityRejected, clampInt64(st.Core.DiversityRejected))
	o.ObserveInt64(m.routeWindow, int64(st.RouteWindow))
	c := st.Core
	for i, v := range c.DeliveredHops {
		o.ObserveInt64(m.delivered, clampInt64(v), metric.WithAttributeSet(m.hopAttrs[i]))
	}
	o.ObserveInt64(m.directDelivered, clampInt64(c.DirectDelivered))
	o.ObserveInt64(m.forwarded, clampInt64(c.Forwarded))
	o.ObserveInt64(m.hopTimeouts, clampInt64(c.HopTimeouts))
	o.ObserveInt64(m.hopsUnsent, clampInt64(c.HopsUnsent))
	o.ObserveInt64(m.held, clampInt64(c.Held))
	o.ObserveInt64(m.reroutes, clampInt64(c.Reroutes))
	o.ObserveInt64(m.spurious, clampInt64(c.SpuriousTimeouts))
	o.ObserveInt64(m.duplicates, clampInt64(c.Duplicates))
	o.ObserveInt64(m.loops, clampInt64(c.Loops))
	o.ObserveInt64(m.routeDropped, clampInt64(c.Dropped))
	o.ObserveInt64(m.coreRejected, clampInt64(c.Rejected))
	o.ObserveInt64(m.suspected, clampInt64(c.Suspected))
	o.ObserveInt64(m.declaredDead, clampInt64(c.DeclaredDead))
	tree, mc := st.Tree, st.Multicast
	o.ObserveInt64(m.mcTopics, int64(tree.Topics))
	o.ObserveInt64(m.mcChildren, int64(tree.Children))
	o.ObserveInt64(m.mcDepth, int64(tree.MaxDepth))
	o.ObserveInt64(m.mcReplicas, int64(tree.Replicas))
	o.ObserveInt64(m.mcDelivered, clampInt64(mc.Delivered))
	o.ObserveInt64(m.mcForwarded, clampInt64(mc.Forwarded))
	o.ObserveInt64(m.mcPublished, clampInt64(mc.Published))
	o.ObserveInt64(m.mcRepairs, clampInt64(mc.Repairs))
	o.ObserveInt64(m.mcHB, clampInt64(mc.Heartbeats))
	o.ObserveInt64(m.mcDuplicates, clampInt64(mc.Duplicates))
	o.ObserveInt64(m.mcTakeovers, clampInt64(mc.Takeovers))
	o.ObserveInt64(m.mcRedirects, clampInt64(mc.Redirects))
	o.ObserveInt64(m.mcRefused, clampInt64(mc.Refused))
	rp, sst := st.Replication, st.Store
	o.ObserveInt64(m.stRecords, int64(sst.Records))
	o.ObserveInt64(m.stBytes, sst.Bytes)
	o.ObserveInt64(m.pastStored, clampInt64(rp.Stored))
	o.ObserveInt64(m.pastRefused, clampInt64(rp.Refused))
	o.ObserveInt64(m.pastQuorumFails, clampInt64(rp.QuorumFails))
	o.ObserveInt64(m.pastMoved, clampInt64(rp.Pushed))
	o.ObserveInt64(m.pastRepairs, clampInt64(rp.ReadRepairs))
	o.ObserveInt64(m.pastSync, clampInt64(rp.SyncRounds))
	o.ObserveInt64(m.pastHandedOff, clampInt64(rp.HandedOff))
	o.ObserveInt64(m.pastRateLimited, clampInt64(rp.RateLimited))
	o.ObserveInt64(m.pastFull, clampInt64(rp.Full))
	o.ObserveInt64(m.pastOverQuota, clampInt64(rp.OverQuota))
	o.ObserveInt64(m.pastDiverted, clampInt64(rp.Diverted))
	o.ObserveInt64(m.pastCacheHits, clampInt64(rp.CacheHits))
	return nil
}
