package proptest

import (
	"testing"
	"time"
)

// crashRegressions are minimal cases of bugs the crash-and-repair property
// (TestCrashRepair) found, kept so that a fix can be checked in
// milliseconds: go test -run TestCrashRepairRegressions ./proptest/. Both
// bugs were present at commits 54bb32f and 95adc86; in every case below the
// leaf sets were still wrong after 24 hours of virtual time, not just after
// repairTime.
var crashRegressions = []struct {
	name, bug string
	c         crashCase
}{
	{
		// Ring 2e96 3691 4276 [a7b7] cb35 f238; a7b7 crashes. Its left
		// neighbour 4276 detects it first-hand and sends MsgSuspect to its
		// own leaf set, which no longer reaches f238 (f238 was not yet in
		// 4276's right side). Its right neighbour cb35 confirms the failure
		// second-hand (onSuspect -> suspect(h, false)) and so never
		// notifies its leaf set, which includes f238. f238 keeps a7b7 as
		// its second left leaf forever: crossCheck, the backstop, sorts the
		// neighbour's leaves into sides by cw < ccw, which is wrong when the
		// neighbour's leaf set spans more than half the ring, as in any
		// overlay of up to about 2L nodes.
		name: "dead leaf kept when its far-side neighbour learns second-hand",
		bug:  "node f23861c0 keeps the crashed a7b7064a in its leaf set",
		c: crashCase{Overlay: overlayCase{Seed: 0x4dc0630805bf27be, N: 6, B: 4, L: 4, Gap: 500 * time.Millisecond, Topo: "constant"},
			Crashes: []uint32{0x83d38}},
	},
	{
		// The same bug with b = 1, as gopter first shrank it: node b05aeb83
		// keeps the crashed 82344ee1.
		name: "dead leaf kept, b=1",
		bug:  "node b05aeb83 keeps the crashed 82344ee1 in its leaf set",
		c: crashCase{Overlay: overlayCase{Seed: 0xda495b2c2e6857ee, N: 6, B: 1, L: 4, Gap: 50 * time.Millisecond, Topo: "constant"},
			Crashes: []uint32{0x3147c}},
	},
	{
		// Four nodes, L = 4; one crashes, leaving three, so every node
		// should hold both others on both sides. Each node is missing one
		// of them on one side, forever: a node already in the leaf set (on
		// the other side) is never offered to the leaf set again, because
		// heard() re-admits a known node only if Leaves.Wants(x), learnAll
		// skips Leaves.Contains(x), and LeafSet.Wants and Preview both
		// answer "no" for any current member.
		name: "leaf-set side never refilled with a node already on the other side",
		bug:  "after the crash every survivor's leaf set lacks a live node on one side",
		c: crashCase{Overlay: overlayCase{Seed: 0x10589557b9c39d17, N: 4, B: 4, L: 4, Gap: 500 * time.Millisecond, Topo: "plane"},
			Crashes: []uint32{0xc907b}},
	},
}

func TestCrashRepairRegressions(t *testing.T) {
	t.Parallel()
	for _, r := range crashRegressions {
		t.Run(r.name, func(t *testing.T) {
			if bad := checkCrashRepair(r.c); bad != "" {
				t.Errorf("%s:\n%s", r.bug, bad)
			}
		})
	}
}
