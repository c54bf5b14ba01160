package sim

import (
	"os"
	"strconv"
	"testing"

	"github.com/pastrynet/pastry/lookup"
)

// secureNodes is the overlay size of TestSecureRouting: 1,000 by default
// (the test took 43 s on the shared, loaded 2-core machine it was written
// on: a mix run with two secure phases and an honest run; a 10,000-node
// mix run took about 5 minutes there, too long for the
// README's test command), PASTRY_SECURE_NODES=10000 for the CI
// size. The measurement log has 10,000 and 100,000 nodes.
func secureNodes(t *testing.T) int {
	n := 1000
	if v := os.Getenv("PASTRY_SECURE_NODES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 100 {
			t.Fatalf("PASTRY_SECURE_NODES=%q: want a number of nodes, at least 100", v)
		}
	}
	return n
}

// Secure routing against the mix of all attacks at F=0.25, b=4, l=32
// (issue 21's acceptance, at a smaller size): secure lookups that always
// run redundant routing find the true root at least 0.995 of the time
// (the log: 1.0000 at 2,000 and 10,000 nodes) where plain routing
// succeeds about as often as routes are free of attackers; and in an
// honest overlay a secure lookup runs redundant routing at most 1% of
// the time (the failure test's false positives), always finds the root,
// and its test rejects at most 0.2% of the true roots at the default γ.
func TestSecureRouting(t *testing.T) {
	if testing.Short() {
		t.Skip("simulations of 1,000 nodes")
	}
	n := secureNodes(t)
	c := DefaultConfig()
	c.Nodes, c.Lookups, c.Seed, c.LeafSetSize = n, n, 3, 32
	c.Attack, c.Malicious, c.Secure, c.SecureRedundant = "mix", 0.25, true, true
	a := mustRun(t, c).Attack
	s, al := a.Secure, a.SecureAlways
	if s == nil || al == nil {
		t.Fatal("no secure results")
	}
	t.Logf("mix F=0.25: plain reached %.4f (clean routes %.4f); secure %.4f (redundant in %.4f), always redundant %.4f; colluders in tables: proximity %.4f constrained %.4f",
		a.PReached, a.CleanPaths, s.PCorrect, s.RedundantShare, al.PCorrect, a.Tables.Proximity, a.Tables.Constrained)
	if s.Lookups != n || al.Lookups != n || s.Correct+s.Wrong+s.Unanswered != n {
		t.Fatalf("%d and %d secure lookups, want %d; %d+%d+%d accounted for", s.Lookups, al.Lookups, n, s.Correct, s.Wrong, s.Unanswered)
	}
	if al.PCorrect < 0.995 || al.RedundantShare != 1 {
		t.Errorf("always redundant: true root found %.4f, redundant routing in %.4f", al.PCorrect, al.RedundantShare)
	}
	if a.PReached > 0.7 || s.PCorrect < 0.995 || s.RedundantShare < 0.2 {
		t.Errorf("plain %.4f, secure (test first) %.4f with redundant routing in %.4f: the attack did little, or secure routing did not hold",
			a.PReached, s.PCorrect, s.RedundantShare)
	}

	c.Malicious, c.SecureRedundant = 0, false
	h := mustRun(t, c).Attack
	s = h.Secure
	fp := rateAt(s.FailureTest, lookup.DefaultGamma).FalsePositive
	fpw := rateAt(s.WitnessedTest, lookup.DefaultGamma).FalsePositive
	t.Logf("honest: secure %.4f, redundant routing in %.4f, false positives at γ=%g %.4f (witnessed %.4f); per lookup %.2f msgs for the test, %.2f for the density estimate, %.2f for the witnesses",
		s.PCorrect, s.RedundantShare, lookup.DefaultGamma, fp, fpw, s.TestMsgs, s.DensityMsgs, s.WitnessMsgs)
	if s.PCorrect != 1 || s.RedundantShare > 0.01 || fp < 0 || fp > 0.002 || fpw < 0 || fpw > 0.002 || s.TrueRootAnswers != n || s.Contradicted != 0 {
		t.Errorf("honest: true root found %.4f, redundant routing in %.4f, false positives %.4f (witnessed %.4f) over %d answers, %d contradicted",
			s.PCorrect, s.RedundantShare, fp, fpw, s.TrueRootAnswers, s.Contradicted)
	}
}

// rateAt is the failure test's error at γ, -1 for both rates when it
// was not measured there.
func rateAt(rs []GammaRates, gamma float64) GammaRates {
	for _, g := range rs {
		if g.Gamma == gamma {
			return g
		}
	}
	return GammaRates{Gamma: gamma, FalsePositive: -1, FalseNegative: -1}
}

// Suppression at F=0.25 (issue 21's acceptance, at 1,000 nodes): a
// suppressing attacker near the key answers as the root with the key's
// neighbourhood minus the nodes closer than itself, which the density
// test cannot tell from the true one (it passed about a third of these
// answers), so before the witnesses (docs/decisions/0089) secure
// lookups that trust a passing test found the true root only 0.81 of the
// time here. The answer's witnesses, honest nodes near the key, know the
// true root: with them, test-first secure lookups find it at least 0.998
// of the time.
func TestSecureRoutingUnderSuppression(t *testing.T) {
	if testing.Short() {
		t.Skip("a simulation of 1,000 nodes")
	}
	c := DefaultConfig()
	c.Nodes, c.Lookups, c.Seed, c.LeafSetSize = 1000, 1000, 3, 32
	c.Attack, c.Malicious, c.Secure = "suppress", 0.25, true
	a := mustRun(t, c).Attack
	s := a.Secure
	fn := rateAt(s.FailureTest, lookup.DefaultGamma).FalseNegative
	fnw := rateAt(s.WitnessedTest, lookup.DefaultGamma).FalseNegative
	t.Logf("suppress F=0.25: plain reached %.4f; secure (test first) %.4f, %d wrong, redundant routing in %.4f; false negatives at γ=%g: density test %.4f, witnessed %.4f over %d answers (%d contradicted); %.2f witness msgs per lookup",
		a.PReached, s.PCorrect, s.Wrong, s.RedundantShare, lookup.DefaultGamma, fn, fnw, s.OtherAnswers, s.Contradicted, s.WitnessMsgs)
	if s.Lookups != c.Lookups || s.PCorrect < 0.998 || fn < 0.1 || fnw < 0 || fnw > 0.005 || s.Contradicted == 0 {
		t.Errorf("suppress: true root found %.4f (%d wrong) of %d; false negatives %.4f, witnessed %.4f; %d contradicted",
			s.PCorrect, s.Wrong, s.Lookups, fn, fnw, s.Contradicted)
	}
}

// In an overlay small enough that every leaf set holds every node, a
// secure lookup's origin checks the answer's root against its own leaf
// set instead of the density test (whose estimate from a handful of gaps
// rejected true roots, and whose coverage check rejected keys in the
// ring's largest gap), so honest lookups end on their answer without
// redundant routing.
func TestSecureLookupsInTinyOverlay(t *testing.T) {
	c := DefaultConfig()
	c.Nodes, c.Lookups, c.Seed, c.LeafSetSize = 10, 200, 4, 32
	c.Attack, c.Malicious, c.Secure = "drop", 0, true
	s := mustRun(t, c).Attack.Secure
	if s.Lookups != 200 || s.Correct != 200 || s.RedundantRuns != 0 || s.PassedFirst != 200 {
		t.Errorf("10 honest nodes: %d of %d lookups found the root, %d ran redundant routing, %d ended on the answer",
			s.Correct, s.Lookups, s.RedundantRuns, s.PassedFirst)
	}
}

// The constrained tables' fill (lookup.App.FillConstrained) against
// poisoners, who offer a colluder for every slot of every row they hand
// out and drop the fill probes they see: after it, most slots hold the
// live node closest to their point, and colluders that are not hold few.
func TestConstrainedFillResistsPoison(t *testing.T) {
	if testing.Short() {
		t.Skip("a simulation of 1,000 nodes")
	}
	c := DefaultConfig()
	c.Nodes, c.Lookups, c.Seed, c.LeafSetSize = 1000, 500, 6, 32
	c.Attack, c.Malicious, c.Secure = "poison", 0.25, true
	a := mustRun(t, c).Attack
	before, f := a.Tables, a.Fill
	if f == nil {
		t.Fatal("no fill ran")
	}
	after := f.Tables
	t.Logf("poison F=0.25: constrained slots exact %.4f -> %.4f, held by a colluder not the closest %.4f -> %.4f, colluders %.4f -> %.4f; %d nodes, %.1f msgs each; secure %.4f",
		before.ConstrainedExact, after.ConstrainedExact, before.ConstrainedWrongColluder, after.ConstrainedWrongColluder,
		before.Constrained, after.Constrained, f.Nodes, f.Msgs, a.Secure.PCorrect)
	if f.Nodes != 750 || after.ConstrainedExact < 0.8 || after.ConstrainedExact <= before.ConstrainedExact ||
		after.ConstrainedWrongColluder > before.ConstrainedWrongColluder/2 || after.Constrained > 0.27 {
		t.Errorf("the fill did not hold against poisoning: %+v -> %+v (%d nodes filled)", before, after, f.Nodes)
	}
	if s := a.Secure; s.PCorrect < 0.998 || s.Wrong > 0 {
		t.Errorf("poison F=0.25: secure lookups found the true root %.4f, %d wrong", s.PCorrect, s.Wrong)
	}
}
