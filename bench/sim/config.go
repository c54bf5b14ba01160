package sim

import (
	"fmt"
	"time"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/lookup"
)

// Config describes one simulation run. Zero values take the defaults noted.
type Config struct {
	// Config is every node's protocol configuration: the same
	// core.Config the daemon runs, its B and LeafSetSize set by --b and
	// --leaf. Zero takes core.SimConfig(); start from DefaultConfig to
	// change single fields.
	core.Config

	Nodes    int    // overlay size built by sequential joins (required)
	Lookups  int    // lookups of random keys from random live nodes
	Topology string // plane (default), sphere or transit-stub
	Seed     uint64
	// Loss is the probability that any one message is lost.
	Loss float64

	// Fail, if > 0, crashes this fraction of the nodes at once after the
	// lookup phase and measures routing right after the failure and again
	// after RepairTime (default 10 min).
	Fail       float64
	RepairTime time.Duration

	// ChurnMedian, if > 0, runs churn for Duration after the overlay is
	// built: sessions with this median (exponential, or Weibull with shape
	// SessionShape when it is not 0 or 1), Poisson arrivals that keep the
	// population near Nodes, and LookupRate lookups per node per minute
	// (default 1).
	ChurnMedian  time.Duration
	Duration     time.Duration
	SessionShape float64
	LookupRate   float64

	// JoinGap is the virtual time between successive joins (default
	// AutoJoinGap(Nodes): 2 s x 1,000 / Nodes within 1 to 200 ms, 20 ms
	// at 100,000 nodes); Settle the quiet time after the last join
	// (default 2 min);
	// LookupWindow the time the lookups are spread over (default 60 s).
	JoinGap, Settle, LookupWindow time.Duration

	// OracleBlock, if > 0, routes lookups with simnet.Lookups.OracleBlock:
	// an analysis aid (a bound on what knowing every member of small
	// routing-table blocks could save), not Pastry.
	OracleBlock int

	// Groups, if > 0, runs the Scribe experiments (ScribeResult) with this
	// many groups after the lookups; GroupFail is the fraction of nodes
	// crashed in its repair experiment (0: none), RootFails the number of
	// groups whose roots are crashed in its failover experiment (0: none).
	Groups    int
	GroupFail float64
	RootFails int

	// Past, if set, runs one of PAST's experiments (PastResult) after the
	// lookups: "storage" (insert failures by utilisation; PastDivert for
	// replica and file diversion) or "caching" (hit rate and hops by
	// Zipf parameter). PastObjects bounds the inserts (storage) or is
	// the objects read (caching); sizes are lognormal with median
	// PastSizeMedian bytes and sigma PastSizeSigma; PastCapacity is the
	// nodes' mean capacity in bytes; PastCache the route cache's bytes;
	// PastZipf the Zipf parameters and PastReads the reads for each.
	Past           string
	PastDivert     bool
	PastObjects    int
	PastSizeMedian int
	PastSizeSigma  float64
	PastCapacity   int64
	PastCache      int64
	PastZipf       []float64
	PastReads      int
	// PastByzantine is the lying replicas of each object's K in the
	// "byzantine" experiment (default 2).
	PastByzantine int

	// Malicious is the fraction of the nodes (0 to 0.3 in the paper's
	// figures) that are colluding attackers, chosen with the run's seed;
	// Attack is what they do to the lookups routed through them (drop,
	// misroute, fake-root or suppress; lookup.Attack). With Attack set,
	// lookups start at honest nodes only and the run reports AttackResult,
	// Malicious 0 included (the honest baseline of the failure test).
	Malicious float64
	Attack    string
	// Gammas are the routing failure test's thresholds the attack section
	// reports its error rates at (default 1.0, 1.2, 1.4, 1.58, 1.72, 2.0,
	// 2.2, 2.5).
	Gammas []float64
	// Secure, with Attack, gives every node a constrained routing table
	// and runs each lookup a second time as a secure lookup (lookup.
	// StartOptions.Secure: constrained routing, the failure test at Gamma,
	// redundant routing when it fails), reported in AttackResult.Secure.
	// Gamma is the test's threshold for the secure lookups (default
	// lookup.DefaultGamma); SecureRedundant runs them a third time, with
	// redundant routing whatever the test says (AttackResult.SecureAlways).
	Secure          bool
	Gamma           float64
	SecureRedundant bool
	// NoFill, with Secure, leaves out the constrained tables' fill
	// before the secure lookups (AttackResult.Fill): the tables are then
	// only what the core's offers made them (an ablation).
	NoFill bool

	// Progress, if set, is told how far each long phase has got.
	Progress func(phase string, done, total int)
	// Events, if set, is given the network's event counter when the run
	// starts, for progress reports (events per second).
	Events func(*uint64)
}

// DefaultConfig is a run of core.SimConfig() nodes with the defaults
// noted on Config's fields; set Nodes.
func DefaultConfig() Config {
	c := Config{}
	c.defaults()
	return c
}

func (c *Config) defaults() {
	if c.Config == (core.Config{}) {
		c.Config = core.SimConfig()
	}
	if c.Topology == "" {
		c.Topology = "plane"
	}
	if c.RepairTime == 0 {
		c.RepairTime = 10 * time.Minute
	}
	if c.LookupRate == 0 {
		c.LookupRate = 1
	}
	if c.JoinGap == 0 && c.Nodes > 0 {
		c.JoinGap = AutoJoinGap(c.Nodes)
	}
	if c.Settle == 0 {
		c.Settle = 2 * time.Minute
	}
	if c.LookupWindow == 0 {
		c.LookupWindow = time.Minute
	}
	if c.Past != "" {
		if c.PastObjects == 0 {
			c.PastObjects = map[string]int{"storage": 100_000, "caching": 1000, "byzantine": 300, "crash": 2000}[c.Past]
		}
		if c.PastSizeMedian == 0 {
			c.PastSizeMedian = 1312
		}
		if c.PastSizeSigma == 0 {
			c.PastSizeSigma = 2.04
		}
		if c.PastCapacity == 0 {
			c.PastCapacity = 2 << 20
		}
		if c.PastCache == 0 {
			c.PastCache = 256 << 10
		}
		if len(c.PastZipf) == 0 {
			c.PastZipf = []float64{0.5, 0.75, 1, 1.25}
		}
		if c.PastReads == 0 {
			c.PastReads = 2000
		}
		if c.Past == "byzantine" && c.PastByzantine == 0 {
			c.PastByzantine = 2
		}
	}
	if c.Secure {
		c.Config.ConstrainedTable = true
		if c.Gamma == 0 {
			c.Gamma = lookup.DefaultGamma
		}
	}
	if c.Attack != "" && len(c.Gammas) == 0 {
		c.Gammas = []float64{1.0, 1.2, 1.4, 1.58, 1.72, 2.0, 2.2, 2.5}
	}
}

// AutoJoinGap is the default join gap for an overlay of n nodes: 2 s x
// 1,000 / n, so that the join phase takes the same virtual time (2,000 s)
// and every node the same maintenance events, whatever the size (with a
// fixed gap they grow as N^2 x gap; decisions 0077, 0078). It is 20 ms,
// the fixed gap of before, at 100,000 nodes. Within 1 ms and 200 ms:
// below 10,000 nodes the join phase is shorter than 2,000 s rather than
// the gap longer than a few of the slowest joins (a small overlay's run
// stays short in virtual time and events), and the floor keeps joins in
// flight at once to a few hundred at most.
func AutoJoinGap(n int) time.Duration {
	if n < 1 {
		n = 1
	}
	return min(200*time.Millisecond, max(time.Millisecond, 2*time.Second*1000/time.Duration(n)))
}

// Validate reports the first bad field, by its command-line name.
func (c *Config) Validate() error {
	bad := func(flag string, v any, want string) error {
		return fmt.Errorf("--%s %v: want %s", flag, v, want)
	}
	switch {
	case c.Nodes < 1 || c.Nodes > 2_000_000:
		return bad("nodes", c.Nodes, "1 to 2,000,000")
	case c.Lookups < 0 || c.Lookups > 100_000_000:
		return bad("lookups", c.Lookups, "0 to 100,000,000")
	case c.Fail < 0 || c.Fail >= 1:
		return bad("fail", c.Fail, "a fraction in [0, 1)")
	case c.Loss < 0 || c.Loss >= 1:
		return bad("loss", c.Loss, "a probability in [0, 1)")
	case c.ChurnMedian < 0:
		return bad("churn-median", c.ChurnMedian, "a positive duration")
	case c.ChurnMedian > 0 && c.Duration <= 0:
		return bad("duration", c.Duration, "a positive duration with --churn-median")
	case c.ChurnMedian > 0 && c.Fail > 0:
		return fmt.Errorf("--fail and --churn-median are separate experiments: give one")
	case c.SessionShape < 0 || c.SessionShape > 10:
		return bad("session-shape", c.SessionShape, "a Weibull shape in (0, 10], or 0 for exponential")
	case c.LookupRate < 0:
		return bad("lookup-rate", c.LookupRate, ">= 0 lookups per node per minute")
	case c.Groups < 0 || c.Groups > 100_000:
		return bad("groups", c.Groups, "0 to 100,000")
	case c.GroupFail < 0 || c.GroupFail >= 1:
		return bad("group-fail", c.GroupFail, "a fraction in [0, 1)")
	case c.RootFails < 0:
		return bad("root-fails", c.RootFails, ">= 0")
	case c.Groups == 0 && (c.GroupFail > 0 || c.RootFails > 0):
		return fmt.Errorf("--group-fail and --root-fails are Scribe experiments: give --groups")
	case c.Groups > 0 && (c.Fail > 0 || c.ChurnMedian > 0):
		return fmt.Errorf("--groups runs its own failure experiments: give it without --fail and --churn-median")
	case c.Past != "" && c.Past != "storage" && c.Past != "caching" && c.Past != "byzantine" && c.Past != "crash":
		return fmt.Errorf("--past %q: want storage, caching, byzantine or crash", c.Past)
	case c.Past == "byzantine" && (c.PastByzantine < 0 || c.PastByzantine > 5):
		return bad("past-byzantine", c.PastByzantine, "0 to K = 5 lying replicas")
	case c.Past != "" && (c.Fail > 0 && c.Past != "crash" || c.ChurnMedian > 0 || c.Groups > 0 || c.Attack != ""):
		return fmt.Errorf("--past is its own experiment: give it without --fail (but for --past crash), --churn-median, --groups and --attack")
	case c.Past != "" && (c.PastObjects < 1 || c.PastObjects > 1_000_000 || c.PastSizeMedian < 1 || c.PastSizeMedian > 1<<20 ||
		!(c.PastSizeSigma >= 0 && c.PastSizeSigma <= 5) || c.PastCapacity < 1<<10 || c.PastCache < 0 || c.PastReads < 0 || c.PastReads > 10_000_000):
		return fmt.Errorf("--past: objects 1 to 1,000,000, size median 1 to 1 MiB, sigma 0 to 5, capacity >= 1 KiB, cache >= 0, reads <= 10,000,000")
	case c.OracleBlock < 0:
		return bad("oracle-block", c.OracleBlock, ">= 0")
	case c.Malicious < 0 || c.Malicious >= 1:
		return bad("malicious", c.Malicious, "a fraction in [0, 1)")
	case c.Malicious > 0 && c.Attack == "":
		return fmt.Errorf("--malicious needs --attack")
	case c.Attack != "" && (c.Fail > 0 || c.ChurnMedian > 0 || c.Groups > 0 || c.OracleBlock > 0):
		return fmt.Errorf("--attack is its own experiment: give it without --fail, --churn-median, --groups and --oracle-block")
	case (c.Secure || c.SecureRedundant) && c.Attack == "":
		return fmt.Errorf("--secure is part of the attack experiment: give --attack (with --malicious 0 for an honest overlay)")
	case c.SecureRedundant && !c.Secure:
		return fmt.Errorf("--secure-redundant needs --secure")
	case c.Gamma < 0:
		return bad("gamma", c.Gamma, "> 0")
	case c.JoinGap < 0 || c.Settle < 0 || c.LookupWindow < 0 || c.RepairTime < 0:
		return fmt.Errorf("phase durations must not be negative")
	}
	if c.Attack != "" {
		if _, err := lookup.ParseAttack(c.Attack); err != nil {
			return fmt.Errorf("--attack %q: want drop, misroute, fake-root, suppress, poison or mix", c.Attack)
		}
	}
	for _, g := range c.Gammas {
		if !(g > 0) {
			return bad("gamma", g, "> 0")
		}
	}
	if err := c.Config.Validate(); err != nil {
		return fmt.Errorf("node config (--b %d --leaf %d): %w", c.B, c.LeafSetSize, err)
	}
	return nil
}
