package sim

import (
	"math"
	"strings"
	"testing"
)

func gammaRates(t *testing.T, a *AttackResult, g float64) GammaRates {
	t.Helper()
	for _, r := range a.FailureTest {
		if r.Gamma == g {
			return r
		}
	}
	t.Fatalf("no rates at γ=%v in %+v", g, a.FailureTest)
	return GammaRates{}
}

// Plain routing under attackers that drop what they receive succeeds as
// often as routes are free of attackers, and about (1-F)^hops (Castro et
// al., OSDI 2002): at 3,000 nodes within 0.03 (the spread of hop counts and
// of how often each node is on a route make the two differ a little; the
// measurement log has 10,000 and 100,000 nodes). The routing failure test
// separates the true roots' answers from the fake roots': at γ=2.5 it
// rejects under 1% of true roots and accepts under 1% of fake ones, while
// the suppression attack gets much more past it.
func TestAttacks(t *testing.T) {
	if testing.Short() {
		t.Skip("3,000-node runs")
	}
	const nodes, lookups, f = 3000, 6000, 0.2
	for _, attack := range []string{"drop", "misroute", "fake-root", "suppress"} {
		c := DefaultConfig()
		c.Nodes, c.Lookups, c.Seed, c.LeafSetSize = nodes, lookups, 11, 32
		c.Malicious, c.Attack = f, attack
		a := mustRun(t, c).Attack
		g := gammaRates(t, a, 2.5)
		t.Logf("%s: reached %.4f accepted %.4f, (1-F)^%.3f = %.4f, clean routes %.4f; answers %d true root, %d attacker root, %d other, %d none; γ=2.5 FP %.4f FN %.4f",
			attack, a.PReached, a.PAccepted, a.PathHops, a.Expected, a.CleanPaths, a.TrueRootAnswers, a.MaliciousRootAnswers, a.OtherAnswers, a.Unanswered, g.FalsePositive, g.FalseNegative)
		if a.Malicious != int(f*nodes) || a.Lookups != lookups {
			t.Fatalf("%s: %d attackers, %d lookups", attack, a.Malicious, a.Lookups)
		}
		if sum := a.Accepted + a.MaliciousRootAnswers + a.Wrong + a.Unanswered; sum != lookups {
			t.Errorf("%s: %d lookups accounted for, want %d", attack, sum, lookups)
		}
		// Every attack here defeats a lookup exactly when its route meets
		// an attacker: the route it would take is free of them.
		if math.Abs(a.PReached-a.CleanPaths) > 0.005 || math.Abs(a.PAccepted-a.PReached) > 0.005 {
			t.Errorf("%s: reached %.4f, accepted %.4f, routes free of attackers %.4f", attack, a.PReached, a.PAccepted, a.CleanPaths)
		}
		if math.Abs(a.PReached-a.Expected) > 0.03 {
			t.Errorf("%s: reached %.4f, (1-F)^hops %.4f", attack, a.PReached, a.Expected)
		}
		switch attack {
		case "drop":
			if a.Wrong != 0 || a.OtherAnswers != 0 {
				t.Errorf("drop: %d wrong answers", a.Wrong)
			}
		case "misroute", "fake-root":
			if a.OtherAnswers < lookups/5 || g.FalseNegative > 0.01 || g.FalsePositive > 0.01 {
				t.Errorf("%s: %d answers from other nodes; γ=2.5: false negatives %.4f, false positives %.4f", attack, a.OtherAnswers, g.FalseNegative, g.FalsePositive)
			}
		case "suppress":
			if g.FalseNegative < 0.1 {
				t.Errorf("suppress: false negatives %.4f at γ=2.5; the attack the test is weakest against got nothing past it", g.FalseNegative)
			}
		}
	}
}

func TestAttackConfig(t *testing.T) {
	for _, tc := range []struct {
		c    Config
		want string
	}{
		{Config{Nodes: 10, Malicious: 0.1}, "--malicious needs --attack"},
		{Config{Nodes: 10, Malicious: 1, Attack: "drop"}, "--malicious"},
		{Config{Nodes: 10, Attack: "eclipse"}, "--attack"},
		{Config{Nodes: 10, Attack: "drop", Fail: 0.1}, "its own experiment"},
		{Config{Nodes: 10, Attack: "drop", Gammas: []float64{1, -1}}, "--gamma"},
	} {
		tc.c.defaults()
		if err := tc.c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error about %s", tc.c, err, tc.want)
		}
	}
}
