package sim

import (
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/multicast"
	"github.com/pastrynet/pastry/transport"
)

// ScribeResult is the Scribe experiments (Castro et al., JSAC 2002): the
// paper's workload of Groups groups whose sizes follow
// floor(N * rank^-1.25 + 0.5), members drawn uniformly from the live
// nodes; one message published to each group from a random node on the
// stable overlay; then a crash of a fraction of the nodes, and a crash of
// groups' roots.
type ScribeResult struct {
	Groups        int `json:"groups"`
	Subscriptions int `json:"subscriptions"`
	LargestGroup  int `json:"largest_group"`
	// SubscribeMsgs is Scribe's messages (routed hops, acknowledgements
	// and Scribe's own replies) per subscription while the trees were
	// built.
	SubscribeMsgs float64 `json:"subscribe_msgs_per_subscription"`

	// The stable overlay: every subscriber should get its group's message
	// exactly once.
	Expected   int `json:"expected"`
	Delivered  int `json:"delivered"`
	Duplicates int `json:"duplicates"`
	Missing    int `json:"missing"`
	// RAD and RMD are, per group, the average (maximum) delay to its
	// members through Scribe (publisher to root to tree) over the average
	// (maximum) unicast delay from the publisher: the paper's delay
	// penalty against IP multicast. Over groups with a member other than
	// the publisher.
	RAD Dist `json:"rad"`
	RMD Dist `json:"rmd"`
	// RADTree and RMDTree are the same for the tree alone: from the root's
	// first copy, against unicast from the root.
	RADTree Dist `json:"rad_tree"`
	RMDTree Dist `json:"rmd_tree"`
	// Node stress: per live node, the topics it has children in, and its
	// children over all topics (the paper's Figure 5 and 6).
	TopicsWithChildrenMean float64 `json:"topics_with_children_mean"`
	TopicsWithChildrenMax  int     `json:"topics_with_children_max"`
	ChildrenMean           float64 `json:"children_mean"`
	ChildrenMax            int     `json:"children_max"`
	// Link stress (transit-stub only): the copies of the groups' messages
	// crossing each physical link (publish hops and tree edges), against
	// IP multicast (one copy per group on each link of the shortest-path
	// tree from the publisher).
	Links *LinkStress `json:"link_stress,omitempty"`
	// Messages (and bytes) of Scribe per delivered message: the publish's
	// hops to the root and the tree's copies, with and without their
	// acknowledgements.
	MsgsPerDelivery     float64 `json:"msgs_per_delivery"`
	MsgsPerDeliveryAcks float64 `json:"msgs_per_delivery_with_acks"`
	BytesPerDelivery    float64 `json:"bytes_per_delivery_with_acks"`

	Crash    *ScribeCrash    `json:"crash,omitempty"`
	RootFail *ScribeRootFail `json:"root_fail,omitempty"`
}

// Dist summarises a distribution.
type Dist struct {
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	Max  float64 `json:"max"`
}

// LinkStress compares Scribe's link use with IP multicast's.
type LinkStress struct {
	Links    int     `json:"links_used"`
	Mean     float64 `json:"mean"`
	Max      int     `json:"max"`
	IPLinks  int     `json:"ip_links_used"`
	IPMean   float64 `json:"ip_mean"`
	IPMax    int     `json:"ip_max"`
	MeanOver float64 `json:"mean_over_ip"` // Mean / IPMean
}

// ScribeCrash: a fraction of the nodes crash at once; a sample of groups
// is published to every HeartbeatInterval/10 for 4 heartbeat periods; a
// surviving subscriber receives again at the arrival of the first message
// after which it missed none.
type ScribeCrash struct {
	Failed        int     `json:"failed"`
	SampleGroups  int     `json:"sample_groups"`
	Survivors     int     `json:"surviving_subscribers"`
	HeartbeatS    float64 `json:"heartbeat_s"`
	Within1HB     float64 `json:"receiving_within_1_heartbeat"`
	Within2HB     float64 `json:"receiving_within_2_heartbeats"`
	Within3HB     float64 `json:"receiving_within_3_heartbeats"`
	Never         int     `json:"never_receiving"`
	WorstS        float64 `json:"worst_s"`
	LostFraction  float64 `json:"lost_fraction"` // of the (subscriber, message) pairs published after the crash
	Repairs       uint64  `json:"repairs"`
	RepairMsgs    uint64  `json:"repair_msgs"` // Scribe's subscriptions, acks, drops and unsubscriptions while repairing, with their acknowledgements
	OrphanedAtOne int     `json:"subscribers_below_a_failed_node"`
}

// ScribeRootFail: the roots of Groups groups crash; each group's publisher
// publishes every second for 3 heartbeat periods. Publishing has resumed
// when a message (and every later one) reaches every surviving
// subscriber.
type ScribeRootFail struct {
	Groups     int     `json:"groups"`
	HeartbeatS float64 `json:"heartbeat_s"`
	ResumedP50 float64 `json:"resumed_p50_s"`
	ResumedMax float64 `json:"resumed_max_s"`
	Resumed    int     `json:"groups_resumed"`
	// LostAfter counts (subscriber, message) pairs missing among those
	// published after publishing resumed.
	LostAfter int    `json:"lost_after_resume"`
	Takeovers uint64 `json:"takeovers"`
}

// scribeRun is the Scribe phase of a run.
type scribeRun struct {
	r      *run
	apps   []*multicast.App // by node index
	groups []*group
	byID   map[id.ID]*group
	// Counting the multicast's messages while on: by kind, with their
	// acknowledgements (matched by sender and Seq) counted to the kind
	// they acknowledge.
	counting bool
	msgs     map[string]uint64
	acks     map[string]uint64
	bytes    map[string]uint64
	pending  map[[2]uint64]string // (sender index, Seq) -> kind
	links    map[uint64]int32     // copies of data and publishes per link
}

type group struct {
	rank    int
	topic   id.ID
	members []int
	// arrived[member][msg] is when message msg reached member (-1: not).
	arrived map[int][]time.Duration
	dups    int
	sent    []time.Duration // publish time of each message
	from    int
	// rootAt is when the root sent message 0's first copy down the tree
	// (-1 before), and root which node that was.
	rootAt time.Duration
	root   int
}

func (g *group) arrive(node, msg int, at time.Duration) {
	a := g.arrived[node]
	if a == nil {
		return // not a member: counted as a duplicate below
	}
	for len(a) <= msg {
		a = append(a, -1)
	}
	if a[msg] >= 0 {
		g.dups++
		return
	}
	a[msg] = at
	g.arrived[node] = a
}

// attach registers Scribe on node n.
func (s *scribeRun) attach(n int) error {
	m := s.r.nw.Node(n).Machine
	a, err := multicast.Register(m, multicast.Options{MaxChildren: -1, Deliver: func(d multicast.Delivery) {
		g := s.byID[d.Topic]
		if g == nil || len(d.Data) != 8 {
			return
		}
		g.arrive(n, int(binary.BigEndian.Uint64(d.Data)), s.r.nw.Now())
	}})
	if err != nil {
		return err
	}
	for len(s.apps) <= n {
		s.apps = append(s.apps, nil)
	}
	s.apps[n] = a
	return nil
}

// onSend counts a message of the multicast, or the acknowledgement of
// one, while counting.
func (s *scribeRun) onSend(from int, m *core.Message) {
	if !s.counting {
		return
	}
	size := uint64(transport.ModelFrameSize(m, handleSize))
	if m.Type == core.MsgRouteAck {
		to, ok := s.r.nw.Lookup(m.To.ID)
		if !ok {
			return
		}
		k := [2]uint64{uint64(to.Index), m.Seq}
		if kind, ok := s.pending[k]; ok {
			delete(s.pending, k)
			s.acks[kind]++
			s.bytes[kind] += size
		}
		return
	}
	if m.App != multicast.AppID || (m.Type != core.MsgRoute && m.Type != core.MsgDirect) {
		return
	}
	kind := multicast.Kind(m.Payload)
	s.msgs[kind]++
	s.bytes[kind] += size
	s.pending[[2]uint64{uint64(from), m.Seq}] = kind
	if g := s.byID[topicOf(m.Payload)]; kind == "data" && g != nil && g.rootAt < 0 {
		g.rootAt = s.r.nw.Now() // the first copy leaves the root
		g.root = from
	}
	if s.links != nil && (kind == "data" || kind == "publish") {
		if to, ok := s.r.nw.Lookup(m.To.ID); ok {
			s.r.model.(Linker).Links(from, to.Index, func(l uint64) { s.links[l]++ })
		}
	}
}

// topicOf is the topic of a Scribe payload (every kind has it after the
// kind byte).
func topicOf(b []byte) id.ID {
	var x id.ID
	if len(b) > id.Len {
		copy(x[:], b[1:])
	}
	return x
}

func (s *scribeRun) resetCounts() {
	s.msgs, s.acks, s.bytes, s.pending = map[string]uint64{}, map[string]uint64{}, map[string]uint64{}, map[[2]uint64]string{}
}

// count sums messages and acks (and bytes) of kinds.
func (s *scribeRun) count(kinds ...string) (msgs, acks, bytes uint64) {
	for _, k := range kinds {
		msgs, acks, bytes = msgs+s.msgs[k], acks+s.acks[k], bytes+s.bytes[k]
	}
	return msgs, acks, bytes
}

func (s *scribeRun) on(n int, f func(a *multicast.App) error) error {
	var err error
	s.r.nw.RunOn(n, func() { err = f(s.apps[n]) })
	return err
}

// scribe runs the Scribe experiments.
func (r *run) scribe() error {
	s := r.sc
	cfg := r.cfg
	res := &ScribeResult{Groups: cfg.Groups}
	r.res.Scribe = res
	n := len(r.nw.Live())
	// The groups, largest first; members uniform over the live nodes.
	live := make([]int, 0, n)
	for _, x := range r.nw.Live() {
		h, _ := r.nw.Lookup(x)
		live = append(live, h.Index)
	}
	type sub struct{ node, group int }
	var subs []sub
	for rank := 1; rank <= cfg.Groups; rank++ {
		size := min(n, int(math.Floor(float64(n)*math.Pow(float64(rank), -1.25)+0.5)))
		g := &group{rank: rank, topic: multicast.TopicID(fmt.Sprintf("group-%d", rank)), arrived: map[int][]time.Duration{}, rootAt: -1}
		for _, k := range r.rng.Perm(n)[:size] {
			g.members = append(g.members, live[k])
			g.arrived[live[k]] = []time.Duration{}
			subs = append(subs, sub{live[k], len(s.groups)})
		}
		s.groups = append(s.groups, g)
		s.byID[g.topic] = g
		res.LargestGroup = max(res.LargestGroup, size)
	}
	res.Subscriptions = len(subs)
	r.rng.Shuffle(len(subs), func(i, j int) { subs[i], subs[j] = subs[j], subs[i] })
	// Subscriptions spread over a minute of virtual time.
	s.counting = true
	s.resetCounts()
	gap := time.Minute / time.Duration(max(len(subs), 1))
	for k, x := range subs {
		if err := s.on(x.node, func(a *multicast.App) error { return a.Subscribe(s.groups[x.group].topic) }); err != nil {
			return fmt.Errorf("subscribe node %d: %w", x.node, err)
		}
		r.nw.RunFor(gap)
		r.progress("subscribe", k+1, len(subs))
	}
	r.nw.RunFor(10 * time.Second)
	m, a, _ := s.count("subscribe", "ack", "drop", "unsubscribe")
	res.SubscribeMsgs = round(float64(m+a)/float64(max(len(subs), 1)), 2)

	// One message to each group, from a random live node, spread over a
	// minute.
	s.resetCounts()
	if _, ok := r.model.(Linker); ok {
		s.links = map[uint64]int32{}
	}
	gap = time.Minute / time.Duration(max(len(s.groups), 1))
	for k, g := range s.groups {
		if err := s.publish(g, live[r.rng.IntN(n)], 0); err != nil {
			return err
		}
		r.nw.RunFor(gap)
		r.progress("publish", k+1, len(s.groups))
	}
	r.nw.RunFor(30 * time.Second)
	s.counting = false
	s.stable(res)
	if s.links != nil {
		res.Links = s.linkStress()
		s.links = nil
	}
	s.nodeStress(res)
	if cfg.GroupFail > 0 {
		if err := s.crash(res); err != nil {
			return err
		}
	}
	if cfg.RootFails > 0 {
		if err := s.rootFail(res); err != nil {
			return err
		}
	}
	return nil
}

// publish has node from publish message number msg to g.
func (s *scribeRun) publish(g *group, from, msg int) error {
	for len(g.sent) <= msg {
		g.sent = append(g.sent, -1)
	}
	g.sent[msg], g.from = s.r.nw.Now(), from
	data := binary.BigEndian.AppendUint64(nil, uint64(msg))
	return s.on(from, func(a *multicast.App) error { return a.Publish(g.topic, data) })
}

// stable fills in the stable overlay's figures from message 0.
func (s *scribeRun) stable(res *ScribeResult) {
	var rads, rmds, radT, rmdT []float64
	topo := s.r.nw.Topology()
	for _, g := range s.groups {
		res.Duplicates += g.dups
		var sumS, sumU, maxS, maxU, sumT, sumTU, maxT, maxTU time.Duration
		count := 0
		for _, m := range g.members {
			res.Expected++
			a := g.arrived[m]
			if len(a) == 0 || a[0] < 0 {
				res.Missing++
				continue
			}
			res.Delivered++
			if m == g.from {
				continue
			}
			d, u := a[0]-g.sent[0], topo.Delay(g.from, m)
			sumS, sumU, maxS, maxU = sumS+d, sumU+u, max(maxS, d), max(maxU, u)
			count++
			if g.rootAt >= 0 && m != g.root {
				d, u := a[0]-g.rootAt, topo.Delay(g.root, m)
				sumT, sumTU, maxT, maxTU = sumT+d, sumTU+u, max(maxT, d), max(maxTU, u)
			}
		}
		if count > 0 && sumU > 0 && maxU > 0 {
			rads = append(rads, float64(sumS)/float64(sumU))
			rmds = append(rmds, float64(maxS)/float64(maxU))
		}
		if sumTU > 0 && maxTU > 0 {
			radT = append(radT, float64(sumT)/float64(sumTU))
			rmdT = append(rmdT, float64(maxT)/float64(maxTU))
		}
	}
	res.RAD, res.RMD = dist(rads), dist(rmds)
	res.RADTree, res.RMDTree = dist(radT), dist(rmdT)
	if res.Delivered > 0 {
		d := float64(res.Delivered)
		m, a, b := s.count("data", "publish", "root-is")
		res.MsgsPerDelivery = round(float64(m)/d, 3)
		res.MsgsPerDeliveryAcks = round(float64(m+a)/d, 3)
		res.BytesPerDelivery = round(float64(b)/d, 1)
	}
}

func dist(xs []float64) Dist {
	if len(xs) == 0 {
		return Dist{}
	}
	slices.Sort(xs)
	sum := 0.0
	for _, x := range xs {
		sum += x
	}
	return Dist{Mean: round(sum/float64(len(xs)), 3), P50: round(pct(xs, 0.5), 3), P90: round(pct(xs, 0.9), 3), Max: round(xs[len(xs)-1], 3)}
}

// linkStress compares the counted copies per link with IP multicast: the
// union, per group, of the links from its publisher to each member.
func (s *scribeRun) linkStress() *LinkStress {
	ls := &LinkStress{Links: len(s.links)}
	total := 0
	for _, c := range s.links {
		total += int(c)
		ls.Max = max(ls.Max, int(c))
	}
	linker := s.r.model.(Linker)
	ip := map[uint64]int32{}
	for _, g := range s.groups {
		used := map[uint64]bool{}
		for _, m := range g.members {
			linker.Links(g.from, m, func(l uint64) { used[l] = true })
		}
		for l := range used {
			ip[l]++
		}
	}
	ipTotal := 0
	for _, c := range ip {
		ipTotal += int(c)
		ls.IPMax = max(ls.IPMax, int(c))
	}
	ls.IPLinks = len(ip)
	if ls.Links > 0 {
		ls.Mean = round(float64(total)/float64(ls.Links), 3)
	}
	if ls.IPLinks > 0 {
		ls.IPMean = round(float64(ipTotal)/float64(ls.IPLinks), 3)
	}
	if ls.IPMean > 0 {
		ls.MeanOver = round(ls.Mean/ls.IPMean, 3)
	}
	return ls
}

// nodeStress: per live node, the topics it has children in and its
// children.
func (s *scribeRun) nodeStress(res *ScribeResult) {
	var topics, children, count int
	for i, a := range s.apps {
		if a == nil || !s.r.joinedAlive(i) {
			continue
		}
		count++
		tc := 0
		for _, ti := range a.Topics() {
			if len(ti.Children) > 0 {
				tc++
			}
		}
		topics += tc
		children += a.Children()
		res.TopicsWithChildrenMax = max(res.TopicsWithChildrenMax, tc)
		res.ChildrenMax = max(res.ChildrenMax, a.Children())
	}
	if count > 0 {
		res.TopicsWithChildrenMean = round(float64(topics)/float64(count), 3)
		res.ChildrenMean = round(float64(children)/float64(count), 3)
	}
}

// sample picks up to k groups at random, with at least min members.
func (s *scribeRun) sample(k, least int) []*group {
	var out []*group
	for _, i := range s.r.rng.Perm(len(s.groups)) {
		if len(out) == k {
			break
		}
		if g := s.groups[i]; len(g.members) >= least {
			out = append(out, g)
		}
	}
	return out
}

// crash crashes GroupFail of the nodes and measures when the surviving
// subscribers of a sample of groups receive again.
func (s *scribeRun) crash(res *ScribeResult) error {
	r := s.r
	hb := r.cfg.HeartbeatInterval
	live := r.nw.Live()
	k := int(float64(len(live)) * r.cfg.GroupFail)
	cr := &ScribeCrash{Failed: k, HeartbeatS: hb.Seconds()}
	res.Crash = cr
	sample := s.sample(100, 1)
	cr.SampleGroups = len(sample)
	// Publishers that survive: chosen first, and spared.
	spare := map[int]bool{}
	for _, g := range sample {
		h, _ := r.nw.Lookup(live[r.rng.IntN(len(live))])
		g.from = h.Index
		spare[h.Index] = true
	}
	dead := map[int]bool{}
	for _, j := range r.rng.Perm(len(live)) {
		if len(dead) == k {
			break
		}
		h, _ := r.nw.Lookup(live[j])
		if !spare[h.Index] {
			dead[h.Index] = true
		}
	}
	// Subscribers whose parent in the sample's trees is about to fail.
	for _, g := range sample {
		for _, m := range g.members {
			if dead[m] {
				continue
			}
			for _, ti := range s.apps[m].Topics() {
				if ti.Topic == g.topic {
					if p, ok := r.nw.Lookup(ti.Parent.ID); ok && dead[p.Index] {
						cr.OrphanedAtOne++
					}
				}
			}
		}
	}
	var before uint64
	for _, a := range s.apps {
		if a != nil {
			before += a.Stats().Repairs
		}
	}
	// In index order: map order is random, and the order of crashes
	// decides the order of the wake-up heap.
	for _, i := range slices.Sorted(maps.Keys(dead)) {
		r.nw.Crash(i)
	}
	crashAt := r.nw.Now()
	s.counting = true
	s.resetCounts()
	every := hb / 10
	first := len(sample[0].sent)
	rounds := 40
	for k := range rounds {
		for _, g := range sample {
			if err := s.publish(g, g.from, first+k); err != nil {
				return err
			}
		}
		r.nw.RunFor(every)
		r.progress("scribe crash", k+1, rounds)
	}
	r.nw.RunFor(10 * time.Second)
	s.counting = false
	m, a, _ := s.count("subscribe", "ack", "drop", "unsubscribe")
	cr.RepairMsgs = m + a
	for _, a := range s.apps {
		if a != nil {
			cr.Repairs += a.Stats().Repairs
		}
	}
	cr.Repairs -= before
	var within [3]int
	lost, pairs := 0, 0
	for _, g := range sample {
		for _, m := range g.members {
			if dead[m] {
				continue
			}
			cr.Survivors++
			a := g.arrived[m]
			last := first - 1 // the last message missed
			for j := first; j < first+rounds; j++ {
				pairs++
				if j >= len(a) || a[j] < 0 {
					last = j
					lost++
				}
			}
			if last == first+rounds-1 {
				cr.Never++
				continue
			}
			again := a[last+1] - crashAt
			cr.WorstS = max(cr.WorstS, round(again.Seconds(), 3))
			for i := range within {
				if again <= time.Duration(i+1)*hb {
					within[i]++
				}
			}
		}
	}
	if cr.Survivors > 0 {
		sv := float64(cr.Survivors)
		cr.Within1HB = round(float64(within[0])/sv, 5)
		cr.Within2HB = round(float64(within[1])/sv, 5)
		cr.Within3HB = round(float64(within[2])/sv, 5)
	}
	if pairs > 0 {
		cr.LostFraction = round(float64(lost)/float64(pairs), 5)
	}
	return nil
}

// rootFail crashes the roots of RootFails groups and measures when
// publishing resumes.
func (s *scribeRun) rootFail(res *ScribeResult) error {
	r := s.r
	hb := r.cfg.HeartbeatInterval
	rf := &ScribeRootFail{HeartbeatS: hb.Seconds()}
	res.RootFail = rf
	var gs []*group
	var roots []int
	for _, g := range s.sample(len(s.groups), 2) {
		if len(gs) == r.cfg.RootFails {
			break
		}
		root, ok := r.nw.Root(g.topic)
		if !ok || slices.Contains(roots, root.Index) {
			continue
		}
		// A live publisher that is not the root.
		live := r.nw.Live()
		for {
			h, _ := r.nw.Lookup(live[r.rng.IntN(len(live))])
			if h.Index != root.Index {
				g.from = h.Index
				break
			}
		}
		gs, roots = append(gs, g), append(roots, root.Index)
	}
	rf.Groups = len(gs)
	// Root state is replicated on a heartbeat: let a round pass.
	r.nw.RunFor(hb)
	var before uint64
	for _, a := range s.apps {
		if a != nil {
			before += a.Stats().Takeovers
		}
	}
	for _, i := range roots {
		r.nw.Crash(i)
	}
	crashAt := r.nw.Now()
	rounds := int(3 * hb / time.Second)
	first := make([]int, len(gs))
	for i, g := range gs {
		first[i] = len(g.sent)
	}
	for k := range rounds {
		for i, g := range gs {
			if g.from >= 0 && r.nw.Node(g.from).Alive() {
				if err := s.publish(g, g.from, first[i]+k); err != nil {
					return err
				}
			}
		}
		r.nw.RunFor(time.Second)
		r.progress("scribe root failover", k+1, rounds)
	}
	r.nw.RunFor(10 * time.Second)
	var resumed []float64
	for i, g := range gs {
		alive := func(m int) bool { return r.nw.Node(m).Alive() }
		got := func(m, j int) bool { a := g.arrived[m]; return j < len(a) && a[j] >= 0 }
		// The first message from which every later one reached every
		// surviving subscriber... measured as: the first that reached all.
		k := -1
		for j := first[i]; j < first[i]+rounds && k < 0; j++ {
			all := true
			for _, m := range g.members {
				all = all && (!alive(m) || got(m, j))
			}
			if all {
				k = j
			}
		}
		if k < 0 {
			continue
		}
		rf.Resumed++
		var at time.Duration
		for _, m := range g.members {
			if alive(m) {
				at = max(at, g.arrived[m][k]-crashAt)
				for j := k; j < first[i]+rounds; j++ {
					if !got(m, j) {
						rf.LostAfter++
					}
				}
			}
		}
		resumed = append(resumed, at.Seconds())
	}
	if len(resumed) > 0 {
		d := dist(resumed)
		rf.ResumedP50, rf.ResumedMax = d.P50, d.Max
	}
	for _, a := range s.apps {
		if a != nil {
			rf.Takeovers += a.Stats().Takeovers
		}
	}
	rf.Takeovers -= before
	return nil
}
