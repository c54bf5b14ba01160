package proptest

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/leanovate/gopter"
	"github.com/leanovate/gopter/gen"
	"github.com/leanovate/gopter/prop"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
)

// crashCase is a settled overlay in which some nodes then crash at once.
type crashCase struct {
	Overlay overlayCase
	// Crashes are candidate ring positions, as fractions of the ring in
	// units of 2^-20 (so they mean something whatever N is). They are taken
	// in order, each only if the crash set stays within the rule: fewer than
	// L/2 adjacent crashed nodes anywhere on the ring, and a survivor.
	Crashes []uint32
}

func (c crashCase) String() string {
	return fmt.Sprintf("crashCase{Overlay: %s, Crashes: %#v}", c.Overlay, c.Crashes)
}

// genCrashes draws 1 to 64 candidate positions; shrinking drops them.
func genCrashes() gopter.Gen {
	return func(p *gopter.GenParameters) *gopter.GenResult {
		out := make([]uint32, 1+p.Rng.Intn(64))
		for i := range out {
			out[i] = uint32(p.Rng.Int63() & (1<<20 - 1))
		}
		return gopter.NewGenResult(out, gen.SliceShrinker(gopter.NoShrinker))
	}
}

func genCrashCase() gopter.Gen {
	return gen.Struct(reflect.TypeOf(crashCase{}), map[string]gopter.Gen{
		"Overlay": genOverlayCase(),
		"Crashes": genCrashes(),
	})
}

// crashSet picks ring positions (0 to n-1, in id order) to crash from the
// candidates, keeping every run of adjacent crashed positions, around the
// ring, shorter than half and at least one survivor.
func crashSet(n, half int, cands []uint32) (crashed []bool, longest int) {
	crashed = make([]bool, n)
	for _, v := range cands {
		p := int(uint64(v) * uint64(n) >> 20)
		if crashed[p] {
			continue
		}
		crashed[p] = true
		if run := longestRun(crashed); run >= half || run == n {
			crashed[p] = false
		}
	}
	return crashed, longestRun(crashed)
}

// longestRun is the longest run of adjacent true values, around the ring.
func longestRun(xs []bool) int {
	best := 0
	for start := range xs {
		run := 0
		for run < len(xs) && xs[(start+run)%len(xs)] {
			run++
		}
		best = max(best, run)
	}
	return best
}

// repairTime is how long the overlay gets after the crashes: failures are
// found from the run's edges inwards, one node per neighbour-silence
// period at worst, then leaf sets are refilled; allow that for every node
// of the longest run, twice over, and a few minutes more.
func repairTime(cfg core.Config, run int) time.Duration {
	per := cfg.NeighborSilence + cfg.HeartbeatInterval + time.Duration(cfg.ProbeRetries+1)*cfg.ProbeTimeout
	return time.Duration(2*run+1)*per + 3*time.Minute
}

// checkCrashRepair is property 4: after crashes that never take out L/2 or
// more adjacent nodes, and time to repair, every leaf set is exact again,
// every routing-table entry still satisfies the prefix invariant, and
// every lookup (including for the crashed nodes' ids) reaches the
// numerically closest live node.
func checkCrashRepair(c crashCase) string {
	o, err := c.Overlay.grow()
	if err != nil {
		return failf(c, "%v", err)
	}
	if bad := o.allJoined(); bad != "" {
		return failf(c, "before the crashes: %s", bad)
	}
	ring := o.nw.Live()
	crashed, run := crashSet(len(ring), c.Overlay.L/2, c.Crashes)
	var dead []id.ID
	var names []string
	for p, x := range ring {
		if crashed[p] {
			n, _ := o.nw.Lookup(x)
			o.nw.Crash(n.Index)
			dead = append(dead, x)
			names = append(names, fmt.Sprintf("%d:%s", n.Index, x.Short()))
		}
	}
	cfg := o.nw.Node(0).Config()
	wait := repairTime(cfg, run)
	o.nw.RunFor(wait)
	what := fmt.Sprintf("after crashing %d of %d nodes (longest adjacent run %d, L/2 = %d) [%s] and %v of repair",
		len(dead), len(ring), run, c.Overlay.L/2, strings.Join(names, " "), wait)
	if bad := o.nw.CheckLeafSets(3); len(bad) > 0 {
		return failf(c, "%s, %d leaf sets differ from the truth: %s", what, len(bad), strings.Join(bad, "; "))
	}
	if bad := o.checkTables(); bad != "" {
		return failf(c, "%s: %s", what, bad)
	}
	if err := o.lookups(rand.New(rand.NewPCG(c.Overlay.Seed, 9)), dead); err != nil {
		return failf(c, "%s: %v", what, err)
	}
	o.nw.RunFor(lookupWindow)
	if bad := o.checkDelivered(); bad != "" {
		return failf(c, "%s: %s", what, bad)
	}
	return ""
}

func TestCrashRepair(t *testing.T) {
	t.Parallel()
	checkProp(t, "after crashes of fewer than L/2 adjacent nodes and repair, leaf sets and lookups are exact", simShrinks,
		prop.ForAll(checkCrashRepair, genCrashCase()))
}
