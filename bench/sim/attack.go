package sim

import (
	"math"
	"math/rand/v2"

	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/lookup"
	"github.com/pastrynet/pastry/simnet"
)

// AttackResult is the attack experiment (Config.Attack): colluding
// malicious nodes on plain routing (Castro et al., OSDI 2002, section
// 2), and the routing failure test's error rates.
type AttackResult struct {
	Attack    string  `json:"attack"`
	Fraction  float64 `json:"fraction"`  // Config.Malicious
	Malicious int     `json:"malicious"` // attacker nodes
	// Lookups were started at honest nodes. Reached is how many were
	// delivered at the key's true root, an honest node; Accepted how many
	// origins accepted that root's answer; Wrong how many accepted an
	// answer from a node that is not the key's root; Unanswered how many
	// had none in time (the rest are MaliciousRootAnswers).
	Lookups    int     `json:"lookups"`
	Reached    int     `json:"reached"`
	Accepted   int     `json:"accepted"`
	Wrong      int     `json:"wrong"`
	Unanswered int     `json:"unanswered"`
	PReached   float64 `json:"p_reached"`
	PAccepted  float64 `json:"p_accepted"`
	// PathHops is the mean hop count of the same lookups' routes through
	// the routing state with nobody interfering (simnet.Network.Path,
	// taken as each lookup starts); Expected is (1-F)^PathHops, the
	// paper's estimate of plain routing's success; ExpectedPerPath the
	// mean of (1-F)^hops over those routes (which the spread of hop
	// counts makes a little larger); CleanPaths the share of the routes
	// with no attacker on them, the root included: the success the
	// attack should give when every attacker on a route defeats it.
	PathHops        float64 `json:"path_hops"`
	Expected        float64 `json:"expected"`
	ExpectedPerPath float64 `json:"expected_per_path"`
	CleanPaths      float64 `json:"clean_paths"`
	// TrueRootAnswers, MaliciousRootAnswers and OtherAnswers count the
	// accepted answers: from the key's true root, an honest node; from
	// the true root, an attacker (its place is right, so the failure test
	// is not about it: it is neither a false positive nor a false
	// negative); and from a node that is not the key's root (a fake or
	// misrouted root). FailureTest has the routing failure test's error
	// rates over the first and the last, at each of Config.Gammas.
	TrueRootAnswers      int          `json:"true_root_answers"`
	MaliciousRootAnswers int          `json:"malicious_root_answers"`
	OtherAnswers         int          `json:"other_answers"`
	FailureTest          []GammaRates `json:"failure_test"`
}

// GammaRates are the routing failure test's error rates at one γ.
type GammaRates struct {
	Gamma float64 `json:"gamma"`
	// FalsePositive is the share of the true roots' answers the test
	// rejects; FalseNegative the share of other nodes' answers it accepts.
	FalsePositive float64 `json:"false_positive"`
	FalseNegative float64 `json:"false_negative"`
	// The same with the origin's own spacing μ_p replaced by the overlay's
	// true mean spacing (2^128 over the live nodes): an analysis aid, what
	// a perfect estimate of the density would give (the paper estimates it
	// from 256 ids, an origin here from its leaf set).
	OracleFalsePositive float64 `json:"oracle_false_positive"`
	OracleFalseNegative float64 `json:"oracle_false_negative"`
}

// attackRun is the attack experiment in progress.
type attackRun struct {
	r         *run
	res       *AttackResult
	mal       []bool // by node index
	colluders lookup.Colluders
	opts      lookup.AdversaryOptions
	hops      int
	expected  float64
	clean     int
	// verdicts of the answers the origins accepted
	truth, other []verdict
}

type verdict struct {
	checks      bool // closest and covers
	ratio       float64
	oracleRatio float64
}

// newAttackRun chooses the attackers: round(F x Nodes) of the node
// indices, from a stream of the run's seed of their own, so that the
// overlay built is the same whatever F and the attack.
func newAttackRun(r *run) (*attackRun, error) {
	atk, err := lookup.ParseAttack(r.cfg.Attack)
	if err != nil {
		return nil, err
	}
	a := &attackRun{r: r, mal: make([]bool, r.cfg.Nodes)}
	k := int(math.Round(r.cfg.Malicious * float64(r.cfg.Nodes)))
	for _, i := range rand.New(rand.NewPCG(r.cfg.Seed, 0xa77ac)).Perm(r.cfg.Nodes)[:k] {
		a.mal[i] = true
	}
	a.opts = lookup.AdversaryOptions{Attack: atk, Colluders: &a.colluders, Known: r.nw.Live}
	a.res = &AttackResult{Attack: r.cfg.Attack, Fraction: r.cfg.Malicious, Malicious: k}
	r.lk.OnAnswer = a.answered
	return a, nil
}

func (a *attackRun) malicious(i int) bool { return i < len(a.mal) && a.mal[i] }

// attach registers the lookup application on node n, or the adversary's
// if n is an attacker.
func (a *attackRun) attach(n *simnet.Host) error {
	if !a.malicious(n.Index) {
		return a.r.lk.Attach(n)
	}
	a.colluders.Add(n.Self())
	return a.r.lk.AttachAdversary(n, a.opts)
}

// started notes a lookup from origin for key: its undisturbed route.
func (a *attackRun) started(origin int, key id.ID) {
	path := a.r.nw.Path(origin, key, a.r.cfg.MaxHops)
	a.hops += len(path)
	a.expected += math.Pow(1-a.r.cfg.Malicious, float64(len(path)))
	for _, j := range path {
		if a.mal[j] {
			return
		}
	}
	a.clean++
}

// answered notes a lookup's end at its origin.
func (a *attackRun) answered(_ uint64, _ int, key id.ID, res lookup.Result, err error) {
	if err != nil {
		a.res.Unanswered++
		return
	}
	live := a.r.nw.Live()
	t := res.FailureTest
	v := verdict{checks: t.Closest && t.Covers, ratio: t.Ratio, oracleRatio: math.Inf(1)}
	if len(live) > 0 {
		v.oracleRatio = t.RootSpacing / (math.Exp2(128) / float64(len(live)))
	}
	root, ok := a.r.nw.Root(key)
	switch {
	case !ok || root.Self().ID != res.Root.ID:
		a.res.Wrong++
		a.other = append(a.other, v)
	case a.malicious(root.Index):
		a.res.MaliciousRootAnswers++
	default:
		a.res.Accepted++
		a.truth = append(a.truth, v)
	}
}

// finish fills the result in: the lookups phase's deliveries are ds.
func (a *attackRun) finish(ds []simnet.Delivery, issued int) {
	res := a.res
	res.Lookups = issued
	for _, d := range ds {
		if d.Correct {
			res.Reached++
		}
	}
	if issued > 0 {
		n := float64(issued)
		res.PReached = round(float64(res.Reached)/n, 6)
		res.PAccepted = round(float64(res.Accepted)/n, 6)
		res.PathHops = round(float64(a.hops)/n, 4)
		res.Expected = round(math.Pow(1-a.r.cfg.Malicious, float64(a.hops)/n), 6)
		res.ExpectedPerPath = round(a.expected/n, 6)
		res.CleanPaths = round(float64(a.clean)/n, 6)
	}
	res.TrueRootAnswers, res.OtherAnswers = len(a.truth), len(a.other)
	share := func(vs []verdict, pass func(verdict) bool) float64 {
		if len(vs) == 0 {
			return 0
		}
		k := 0
		for _, v := range vs {
			if pass(v) {
				k++
			}
		}
		return round(float64(k)/float64(len(vs)), 6)
	}
	for _, g := range a.r.cfg.Gammas {
		pass := func(v verdict) bool { return v.checks && v.ratio <= g }
		oracle := func(v verdict) bool { return v.checks && v.oracleRatio <= g }
		fail := func(v verdict) bool { return !pass(v) }
		oracleFail := func(v verdict) bool { return !oracle(v) }
		res.FailureTest = append(res.FailureTest, GammaRates{Gamma: g,
			FalsePositive: share(a.truth, fail), FalseNegative: share(a.other, pass),
			OracleFalsePositive: share(a.truth, oracleFail), OracleFalseNegative: share(a.other, oracle)})
	}
}
