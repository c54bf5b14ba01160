package sim

import (
	"testing"
)

// checkScribe asserts the Scribe acceptance figures on one run.
func checkScribe(t *testing.T, r *Result) {
	t.Helper()
	s := r.Scribe
	if s == nil {
		t.Fatal("no Scribe result")
	}
	t.Logf("%d nodes, %d groups, %d subscriptions: delivered %d/%d dup %d; RAD %.3f (tree %.3f) RMD %.3f (tree %.3f); stress topics %.2f/%d children %.2f/%d; links %+v; msgs/delivery %.3f (%.3f with acks)",
		r.Nodes, s.Groups, s.Subscriptions, s.Delivered, s.Expected, s.Duplicates, s.RAD.Mean, s.RADTree.Mean, s.RMD.Mean, s.RMDTree.Mean,
		s.TopicsWithChildrenMean, s.TopicsWithChildrenMax, s.ChildrenMean, s.ChildrenMax, s.Links, s.MsgsPerDelivery, s.MsgsPerDeliveryAcks)
	if s.Delivered != s.Expected || s.Duplicates != 0 || s.Missing != 0 || s.Expected != s.Subscriptions {
		t.Errorf("stable overlay: %d of %d delivered, %d duplicates, %d missing: want each exactly once", s.Delivered, s.Expected, s.Duplicates, s.Missing)
	}
	if s.RADTree.Mean < 1 || s.RAD.Mean < s.RADTree.Mean/2 || s.Links != nil && s.Links.MeanOver < 1 {
		t.Errorf("delay or link stress below what unicast and IP multicast allow: %+v %+v %+v", s.RAD, s.RADTree, s.Links)
	}
	if c := s.Crash; c != nil {
		t.Logf("crash: %+v", *c)
		if c.Survivors == 0 || c.Within3HB < 0.999 || c.Never > 0 {
			t.Errorf("after a %d-node crash, %.4f of %d surviving subscribers received again within 3 heartbeat periods (never: %d), want 0.999",
				c.Failed, c.Within3HB, c.Survivors, c.Never)
		}
	}
	if f := s.RootFail; f != nil {
		t.Logf("root failover: %+v", *f)
		if f.Resumed != f.Groups || f.ResumedMax > 2*f.HeartbeatS || f.LostAfter != 0 {
			t.Errorf("root failover: resumed in %d of %d groups, at most %.2fs (want %.0fs), %d lost after", f.Resumed, f.Groups, f.ResumedMax, 2*f.HeartbeatS, f.LostAfter)
		}
	}
}

// Scribe's experiments at 2,000 nodes: the figures, and determinism.
func TestScribeSmall(t *testing.T) {
	c := Config{Nodes: 2000, Groups: 300, GroupFail: 0.1, RootFails: 10, Topology: "transit-stub", Seed: 3}
	a := mustRun(t, c)
	checkScribe(t, a)
	if ja, jb := engineless(t, a), engineless(t, mustRun(t, c)); ja != jb {
		t.Fatalf("same config, different results:\n%s\n%s", ja, jb)
	}
}

// The paper's workload shape at 10,000 nodes (1,500 groups), with a 10%
// crash and 20 root failures: CI's form of the 100,000-node report run.
func TestScribeTenThousand(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 nodes, about a minute")
	}
	checkScribe(t, mustRun(t, Config{Nodes: 10000, Groups: 1500, GroupFail: 0.1, RootFails: 20, Topology: "transit-stub", Seed: 1}))
}
