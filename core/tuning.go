package core

import (
	"math/bits"
	"time"
)

// Self-tuned table probing (MSPastry, Castro, Costa and Rowstron, DSN
// 2004). A lookup that meets a dead routing-table entry on its way waits
// for a hop timeout and is re-routed: that wait is most of the delay
// stretch under churn. An entry stays dead in a table until a probe finds
// out: for about half the probing period plus the detection time. With
// entries failing at rate mu, a hop meets a dead entry with probability
// about mu x (T/2 + detection), and a lookup of h hops meets one on its
// h-1 hops through tables with about (h-1) times that: the raw loss rate.
// Each node estimates mu from what it sees (failures of the entries of its
// own table and leaf set, over the time it held them, decaying by 1/64 a
// heartbeat: a window of about half an hour at the default heartbeat) and
// h from its leaf set's density, and sets the period T for the raw loss
// rate ProbeLossTarget, within [StateProbeMin, StateProbeInterval]. A node
// that has seen no failure probes every StateProbeInterval, as before.
// All of it is integer arithmetic: the same inputs give the same period
// on every platform.

// failOne is one failure in failsSeen.
const failOne = 1024

// tuningDecay: failsSeen and exposure lose 1/2^tuningDecay each heartbeat.
// The window is long so that a one-off mass failure, spread over the
// window, does not pass for churn: 10% of a node's entries failing at once
// is a rate of 10% per half hour, against about 75% per half hour with
// 30-minute sessions.
const tuningDecay = 6

// burstDecay: failsRecent loses 1/2^burstDecay each heartbeat (a window of
// about 4 heartbeats).
const burstDecay = 2

// burstShare: failures of more than 1/burstShare of the entries held,
// within the last few heartbeats, are a burst (see retune).
const burstShare = 8

// tableProbeInterval is the current period of table probing.
func (n *Machine) tableProbeInterval() time.Duration {
	if n.probeIv > 0 {
		return n.probeIv
	}
	return n.cfg.StateProbeInterval
}

// sawFailure counts a failure of an entry of this node's state.
func (n *Machine) sawFailure() {
	n.failsSeen += failOne
	n.failsRecent += failOne
	n.retune()
}

// tuneProbing, on every heartbeat, adds the heartbeat interval's exposure
// (the entries held, times the interval), decays the estimate and sets the
// period again.
func (n *Machine) tuneProbing() {
	if n.cfg.ProbeLossTarget <= 0 || n.cfg.StateProbeInterval <= 0 {
		return
	}
	n.failsSeen -= n.failsSeen >> tuningDecay
	n.failsRecent -= n.failsRecent >> burstDecay
	n.exposure -= n.exposure >> tuningDecay
	held := uint64(n.state.Table.Size() + n.state.Leaves.Len())
	hb := held * uint64(n.cfg.HeartbeatInterval/time.Millisecond)
	// A young node's own record is short: a few failures soon after it
	// joined (a mass failure, say) would pass for a high rate. It starts
	// from half a window without failures (the steady state holds a
	// whole one).
	n.exposure = max(n.exposure+hb, hb<<(tuningDecay-1))
	n.retune()
}

// retune sets probeIv from the failure rate seen (see above).
func (n *Machine) retune() {
	iv := n.cfg.StateProbeInterval
	held := uint64(n.state.Table.Size() + n.state.Leaves.Len())
	if n.cfg.ProbeLossTarget <= 0 || iv <= 0 || n.failsSeen < failOne/2 || n.failsRecent > held*failOne/burstShare {
		// No failures, or a burst: more than 1/burstShare of the entries
		// held failed within the last few heartbeats. A burst is a
		// partition or a mass failure, not churn: probing faster would not
		// keep up with it, and would purge the entries across a partition
		// that let the two rings find each other again once it heals.
		n.probeIv = 0
		return
	}
	lossPPM := uint64(n.cfg.ProbeLossTarget * 1e6)
	// The per-hop target q = loss / (h-1), scaled by failOne, in ppm.
	q := lossPPM * 16 * failOne / uint64(n.tableHops16())
	// T/2 + detection = q / mu = q x exposure / fails, in milliseconds.
	hi, lo := bits.Mul64(q, n.exposure)
	den := n.failsSeen * 1e6
	if hi >= den {
		n.probeIv = 0
		return
	}
	ms, _ := bits.Div64(hi, lo, den)
	detect := n.cfg.ProbeTimeout * time.Duration(n.cfg.ProbeRetries+1)
	t := iv
	if ms < uint64(iv/time.Millisecond) {
		t = 2 * (time.Duration(ms)*time.Millisecond - detect)
	}
	n.probeIv = min(max(t, n.cfg.StateProbeMin, time.Millisecond), iv)
}

// tableHops16 is 16 times the hops a lookup is expected to take through
// routing tables, log_{2^b} N - 1 (at least 1), with the overlay's size N
// estimated from the leaf set's density: 2^128 over the mean gap between
// adjacent ids.
func (n *Machine) tableHops16() int {
	size, ok := n.sizeBits()
	if !ok {
		return 16 // the leaf set covers the ring
	}
	return max(16, size*16/n.cfg.B-16)
}

// sizeBits is log2 of the overlay's size estimated from the leaf set's
// density (2^128 over the mean gap between adjacent ids, rounded); false
// if the leaf set covers the ring.
func (n *Machine) sizeBits() (int, bool) {
	sp := n.state.Leaves.Spacing()
	switch {
	case sp.Hi != 0:
		return 128 - 64 - bits.Len64(sp.Hi), true
	case sp.Lo != 0:
		return 128 - bits.Len64(sp.Lo), true
	}
	return 0, false
}
