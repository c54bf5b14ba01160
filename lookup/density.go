package lookup

import (
	"encoding/binary"
	"slices"
	"time"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
)

// The origin's density estimate μ_p for the failure test of secure
// lookups (see docs/decisions/0068). The test compares two mean
// spacings, each a mean of exponential gaps: the root's over the 32 gaps
// of its leaf set, the origin's over those of its own. With both from 32
// gaps the ratio's spread alone rejects 1.6% of true roots at γ=1.72
// (Monte Carlo of Gamma(32)/32 over Gamma(32)/32), which is what the
// simulator measured; Castro et al. take μ_p from 256 ids, which gives
// 0.0009. So a secure lookup's origin pools its own leaf set with the
// leaf sets of Options.DensitySets other nodes (its routing-table
// entries, spread over the ring), asked for directly and cached for
// Options.DensityMaxAge: 8 sets of 32 gaps, 256 in all.
//
// A node can make its set look sparser than it is (leave ids out), not
// denser (ids are certified, and real ones are spread at random), so a
// lying node can only raise μ_p, which lets sparser fake roots pass.
// PoolSpacing leaves out the sets whose own mean spacing is more than
// 1.5 times the median of the sets' (an honest set is that far off less
// than once in a thousand), so a minority of liars moves μ_p little.

// PoolSpacing is the mean spacing of several sets of ids together: the
// sum of their spans over the sum of their gaps (each set as MeanSpacing
// counts it), leaving out the sets whose own mean spacing exceeds 1.5
// times the median of all the sets' mean spacings. 0 when no set has 2
// distinct ids.
func PoolSpacing(sets [][]id.ID) float64 {
	type est struct{ mean, gaps float64 }
	var es []est
	for _, s := range sets {
		m, at := meanSpacing(ringSet(s))
		if at < 0 || m <= 0 {
			continue
		}
		es = append(es, est{m, float64(len(ringSet(s)) - 1)})
	}
	if len(es) == 0 {
		return 0
	}
	means := make([]float64, len(es))
	for i, e := range es {
		means[i] = e.mean
	}
	slices.Sort(means)
	med := means[len(means)/2]
	if len(means)%2 == 0 {
		med = (means[len(means)/2-1] + means[len(means)/2]) / 2
	}
	var span, gaps float64
	for _, e := range es {
		if e.mean <= 1.5*med {
			span += e.mean * e.gaps
			gaps += e.gaps
		}
	}
	return span / gaps
}

// density is the origin's cached μ_p and the refresh in progress.
type density struct {
	mu         float64
	at         time.Duration
	valid      bool
	refreshing bool
	nonce      uint64
	asked      map[id.ID]bool
	sets       [][]id.ID
	waiters    []uint64 // secure lookups whose answer waits for the refresh
}

// densityTag is the timer tag that ends a refresh (lookup ids are never
// 0).
const densityTag = 0

// densityTimeout bounds a refresh: the replies that came by then are
// used.
const densityTimeout = time.Second

// ensureDensity starts a refresh of μ_p if there is none in progress
// and the estimate is missing or older than Options.DensityMaxAge.
func (a *App) ensureDensity() {
	d := &a.dens
	if a.opts.DensitySets < 0 || d.refreshing || d.valid && a.ep.Now()-d.at < a.opts.DensityMaxAge {
		return
	}
	st := a.ep.State()
	t := st.Constrained
	if t == nil {
		t = st.Table
	}
	var cands []id.Handle
	for r := range t.Rows() {
		cands = t.AppendRowHandles(r, cands)
	}
	d.refreshing, d.sets, d.asked = true, nil, map[id.ID]bool{}
	d.nonce = a.ep.Rand().Uint64()
	req := binary.BigEndian.AppendUint64([]byte{kindLeavesRequest}, d.nonce)
	for len(d.asked) < a.opts.DensitySets && len(cands) > 0 {
		i := a.ep.Rand().IntN(len(cands))
		h := cands[i]
		cands = slices.Delete(cands, i, i+1)
		if h.ID == a.ep.Self().ID || d.asked[h.ID] {
			continue
		}
		if a.ep.Send(h, req) == nil {
			d.asked[h.ID] = true
		}
	}
	if len(d.asked) == 0 {
		a.endRefresh()
		return
	}
	_, _ = a.ep.After(densityTimeout, densityTag)
}

// leavesReply takes a node's answer to a refresh.
func (a *App) leavesReply(m *core.Message) {
	d := &a.dens
	nonce, leaves, ok := parseLeavesReply(m.Payload)
	if !ok || m.Type != core.MsgDirect || !d.refreshing || nonce != d.nonce || !d.asked[m.From.ID] {
		return
	}
	delete(d.asked, m.From.ID)
	d.sets = append(d.sets, append(leaves, m.From.ID))
	if len(d.asked) == 0 {
		a.endRefresh()
	}
}

// endRefresh pools what came, and runs the tests that waited for it.
func (a *App) endRefresh() {
	d := &a.dens
	if !d.refreshing {
		return
	}
	sets := append(d.sets, append(ownLeaves(a.ep), a.ep.Self().ID))
	if mu := PoolSpacing(sets); mu > 0 {
		d.mu, d.valid = mu, true
	}
	d.at, d.refreshing, d.sets, d.asked = a.ep.Now(), false, nil, nil
	ws := d.waiters
	d.waiters = nil
	for _, req := range ws {
		if p := a.pending[req]; p != nil && p.sec != nil && p.sec.awaiting {
			p.sec.awaiting = false
			a.testAnswer(req, p)
		}
	}
}

// ownSpacing is μ_p: the pooled estimate when there is one, else the
// origin's own leaf set's.
func (a *App) ownSpacing() float64 {
	if a.dens.valid {
		return a.dens.mu
	}
	m, _ := meanSpacing(ringSet(ownLeaves(a.ep), a.ep.Self().ID))
	return m
}

// answerLeaves answers a refresh: this node's leaf set, straight back.
func answerLeaves(ep *core.Endpoint, m *core.Message, leaves []id.ID) {
	if m.Type != core.MsgDirect || len(m.Payload) != 9 || m.Payload[0] != kindLeavesRequest {
		return
	}
	_ = ep.Send(m.From, appendLeavesReply(nil, binary.BigEndian.Uint64(m.Payload[1:]), leaves))
}

// The refresh's payloads:
//
//	leaves request: [5][nonce u64]
//	leaves reply:   [6][nonce u64][count u8, at most MaxAnswerLeaves][ids, 16 each]
const (
	kindLeavesRequest = 5
	kindLeavesReply   = 6
)

func appendLeavesReply(b []byte, nonce uint64, leaves []id.ID) []byte {
	b = binary.BigEndian.AppendUint64(append(b, kindLeavesReply), nonce)
	k := min(len(leaves), MaxAnswerLeaves)
	b = append(b, byte(k))
	for _, x := range leaves[:k] {
		b = append(b, x[:]...)
	}
	return b
}

// parseLeavesReply reads what appendLeavesReply wrote.
func parseLeavesReply(b []byte) (uint64, []id.ID, bool) {
	if len(b) < 10 || b[0] != kindLeavesReply {
		return 0, nil, false
	}
	k := int(b[9])
	if k > MaxAnswerLeaves || len(b) != 10+id.Len*k {
		return 0, nil, false
	}
	ids, _ := readIDs(b[10:], k)
	return binary.BigEndian.Uint64(b[1:]), ids, true
}
