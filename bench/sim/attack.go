package sim

import (
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/lookup"
	"github.com/pastrynet/pastry/routing"
	"github.com/pastrynet/pastry/simnet"
	"github.com/pastrynet/pastry/transport"
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
	// Tables is the share of colluders in the honest nodes' routing
	// tables after the plain lookups; with Config.Secure also in their
	// constrained tables.
	Tables TableShares `json:"tables"`
	// Secure is the secure lookups' outcome, with Config.Secure;
	// SecureAlways that of the same lookups run once more with redundant
	// routing whatever the test says, with Config.SecureRedundant.
	Secure       *SecureResult `json:"secure,omitempty"`
	SecureAlways *SecureResult `json:"secure_always,omitempty"`
	// Fill is the constrained tables' fill (lookup.App.FillConstrained)
	// every honest node runs before the secure lookups, with
	// Config.Secure unless Config.NoFill; Tables has the state before it,
	// Fill.Tables after it.
	Fill *FillResult `json:"fill,omitempty"`
}

// FillResult is the fill phase of the attack experiment: every honest
// node fills its constrained table once (lookup.App.FillConstrained),
// the starts spread over the lookup window, then 30 s for the last
// probes and their retries.
type FillResult struct {
	Nodes   int `json:"nodes"`   // honest nodes that ran a fill
	Probes  int `json:"probes"`  // fill probes sent, retries included
	Answers int `json:"answers"` // answers taken
	Hellos  int `json:"hellos"`  // nodes greeted
	// Msgs and Bytes per filling node: the lookup application's fill
	// probes (each overlay hop), answers, hellos and their replies; the
	// core's probes of the nodes greeted are not counted.
	Msgs   float64     `json:"msgs_per_node"`
	Bytes  float64     `json:"bytes_per_node"`
	Tables TableShares `json:"tables"`
}

// TableShares is the share of attacker entries in the honest nodes'
// routing state.
type TableShares struct {
	Proximity   float64 `json:"proximity"`
	Constrained float64 `json:"constrained,omitempty"`
	Leaves      float64 `json:"leaves"`
	// ConstrainedExact is the share of the honest nodes' filled
	// constrained slots that hold the live node closest to the slot's
	// point among those in the slot's block (what the constrained table
	// should hold); ConstrainedWrongColluder the share held by a colluder
	// that is not that node, and ConstrainedHoles the share of slots
	// whose block has a live node but that are empty, of all slots whose
	// block has one.
	ConstrainedExact         float64 `json:"constrained_exact,omitempty"`
	ConstrainedWrongColluder float64 `json:"constrained_wrong_colluder,omitempty"`
	ConstrainedHoles         float64 `json:"constrained_holes,omitempty"`
}

// SecureResult is the secure lookups of the attack experiment: the same
// origins and keys as the plain lookups, in the same order, each started
// as a secure lookup (lookup.StartOptions.Secure) once the plain ones are
// over.
type SecureResult struct {
	Gamma     float64 `json:"gamma"`
	Redundant bool    `json:"always_redundant"` // Config.SecureRedundant
	Lookups   int     `json:"lookups"`
	// Correct: the root the lookup ended with is the key's true root
	// (whether that node is honest or not: a secure lookup identifies the
	// root; what the root then does is the application's affair).
	// CorrectHonest counts those among the lookups whose true root is
	// honest, of HonestRoots. Wrong ended with another node; Unanswered
	// with ErrTimeout.
	Correct       int     `json:"correct"`
	PCorrect      float64 `json:"p_correct"`
	HonestRoots   int     `json:"honest_roots"`
	CorrectHonest int     `json:"correct_honest"`
	Wrong         int     `json:"wrong"`
	Unanswered    int     `json:"unanswered"`
	// RedundantRuns is how many lookups ran redundant routing (Share of
	// Lookups), over Rounds rounds in all; PassedFirst how many ended on
	// the routed answer's passing test; CorrectAfterTest and
	// CorrectAfterRedundant split Correct by the path taken.
	RedundantRuns         int     `json:"redundant_runs"`
	RedundantShare        float64 `json:"redundant_share"`
	Rounds                int     `json:"rounds"`
	PassedFirst           int     `json:"passed_first"`
	CorrectAfterTest      int     `json:"correct_after_test"`
	CorrectAfterRedundant int     `json:"correct_after_redundant"`
	// The lookup application's own messages in the secure phase (each
	// overlay hop of a request or probe, each answer or claim; the hop
	// acknowledgements, one per routed hop, are not counted) and their
	// bytes on the wire: per lookup for the routed request and its answer
	// (TestMsgs, TestBytes), per redundant routing for its probes and
	// claims (RedundantMsgs, RedundantBytes).
	TestMsgs       float64 `json:"test_msgs_per_lookup"`
	TestBytes      float64 `json:"test_bytes_per_lookup"`
	RedundantMsgs  float64 `json:"redundant_msgs_per_run"`
	RedundantBytes float64 `json:"redundant_bytes_per_run"`
	// DensityMsgs and DensityBytes are the density refreshes' requests and
	// replies per lookup (lookup.Options.DensitySets; one refresh per
	// origin here, as each origin runs few lookups).
	DensityMsgs  float64 `json:"density_msgs_per_lookup"`
	DensityBytes float64 `json:"density_bytes_per_lookup"`
	// WitnessMsgs and WitnessBytes are the witness requests' hops and
	// the witnesses' replies per lookup (lookup.Options.Witnesses).
	WitnessMsgs  float64 `json:"witness_msgs_per_lookup"`
	WitnessBytes float64 `json:"witness_bytes_per_lookup"`
	// Contradicted is how many routed answers a witness contradicted (a
	// reply named an id closer to the key than the answer's root), and
	// WitnessesMissing how many lacked a witness's reply when the lookup
	// went on, of the answers whose witnesses were asked (Witnessed).
	Witnessed        int `json:"witnessed"`
	Contradicted     int `json:"contradicted"`
	WitnessesMissing int `json:"witnesses_missing"`
	// FailureTest is the error of the failure test the secure lookups
	// ran on their routed answers, with μ_p pooled from 8 leaf sets
	// (lookup.PoolSpacing), at each of Config.Gammas: false positives
	// over the answers of honest true roots, false negatives over those
	// of nodes that are not the key's root (the oracle columns unused).
	FailureTest []GammaRates `json:"failure_test"`
	// WitnessedTest is the same with the witnesses' verdict: an answer
	// passes at γ when it passes FailureTest's test and its witnesses
	// all replied, none contradicting it (lookup.FailureTest.WitnessesPassed).
	WitnessedTest   []GammaRates `json:"failure_test_witnessed"`
	TrueRootAnswers int          `json:"true_root_answers"`
	OtherAnswers    int          `json:"other_answers"`
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
	// the plain lookups' origins and keys, for the secure phase
	origins []int
	keys    []id.ID
	sec     *secureRun // the secure phase, while it runs
	// the fill phase's messages and bytes, while it runs
	filling             bool
	fillMsgs, fillBytes uint64
}

// secureRun counts the secure phase.
type secureRun struct {
	res                     *SecureResult
	testMsgs, testBytes     uint64
	redundMsgs, redundBytes uint64
	densMsgs, densBytes     uint64
	witMsgs, witBytes       uint64
	truth, other            []float64 // the routed answers' ratios μ_rn/μ_p (checks failed: +Inf)
	truthW, otherW          []float64 // the same, +Inf also when the witnesses failed the answer
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
	a.origins, a.keys = append(a.origins, origin), append(a.keys, key)
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
	if a.sec != nil {
		a.secureAnswered(key, res, err)
		return
	}
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
	a.tables(a.r.cfg.Secure)
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

// secure runs the secure phase: every plain lookup's origin and key
// again, as secure lookups, over the same window.
func (a *attackRun) secure() error {
	if !a.r.cfg.NoFill {
		a.fillPhase()
	}
	res, err := a.securePhase(false)
	if err != nil {
		return err
	}
	a.res.Secure = res
	if a.r.cfg.SecureRedundant {
		if a.res.SecureAlways, err = a.securePhase(true); err != nil {
			return err
		}
	}
	return nil
}

// fillPhase has every honest node fill its constrained table, the
// starts spread over the lookup window.
func (a *attackRun) fillPhase() {
	r := a.r
	fr := &FillResult{}
	a.res.Fill = fr
	a.filling = true
	defer func() { a.filling = false }()
	var nodes []int
	for i := range r.cfg.Nodes {
		if !a.malicious(i) && r.lk.App(i) != nil {
			nodes = append(nodes, i)
		}
	}
	gap := time.Duration(0)
	if len(nodes) > 0 {
		gap = r.cfg.LookupWindow / time.Duration(len(nodes))
	}
	for k, i := range nodes {
		app := r.lk.App(i)
		r.nw.RunOn(i, func() {
			if app.FillConstrained() {
				fr.Nodes++
			}
		})
		r.nw.RunFor(gap)
		r.progress("fill", k+1, len(nodes))
	}
	r.nw.RunFor(30 * time.Second)
	for _, i := range nodes {
		st := r.lk.App(i).FillStats()
		fr.Probes += st.Probes
		fr.Answers += st.Answers
		fr.Hellos += st.Hellos
	}
	if fr.Nodes > 0 {
		fr.Msgs = round(float64(a.fillMsgs)/float64(fr.Nodes), 2)
		fr.Bytes = round(float64(a.fillBytes)/float64(fr.Nodes), 1)
	}
	before := a.res.Tables
	a.tables(true)
	fr.Tables, a.res.Tables = a.res.Tables, before
}

// securePhase runs one secure phase; always: every lookup runs
// redundant routing.
func (a *attackRun) securePhase(always bool) (*SecureResult, error) {
	r := a.r
	s := &secureRun{res: &SecureResult{Gamma: r.cfg.Gamma, Redundant: always}}
	a.sec = s
	defer func() { a.sec = nil }()
	n := len(a.keys)
	gap := time.Duration(0)
	if n > 0 {
		gap = r.cfg.LookupWindow / time.Duration(n)
	}
	so := lookup.StartOptions{Secure: true, Redundant: always}
	for k := range n {
		if _, err := r.lk.LookupWith(a.origins[k], a.keys[k], so); err != nil {
			return nil, err
		}
		s.res.Lookups++
		r.nw.RunFor(gap)
		r.progress("secure lookups", k+1, n)
	}
	r.nw.RunFor(30 * time.Second)
	res := s.res
	if res.Lookups > 0 {
		res.PCorrect = round(float64(res.Correct)/float64(res.Lookups), 6)
		res.RedundantShare = round(float64(res.RedundantRuns)/float64(res.Lookups), 6)
		res.TestMsgs = round(float64(s.testMsgs)/float64(res.Lookups), 3)
		res.TestBytes = round(float64(s.testBytes)/float64(res.Lookups), 1)
		res.DensityMsgs = round(float64(s.densMsgs)/float64(res.Lookups), 3)
		res.DensityBytes = round(float64(s.densBytes)/float64(res.Lookups), 1)
		res.WitnessMsgs = round(float64(s.witMsgs)/float64(res.Lookups), 3)
		res.WitnessBytes = round(float64(s.witBytes)/float64(res.Lookups), 1)
	}
	if res.RedundantRuns > 0 {
		res.RedundantMsgs = round(float64(s.redundMsgs)/float64(res.RedundantRuns), 3)
		res.RedundantBytes = round(float64(s.redundBytes)/float64(res.RedundantRuns), 1)
	}
	res.TrueRootAnswers, res.OtherAnswers = len(s.truth), len(s.other)
	for _, g := range r.cfg.Gammas {
		res.FailureTest = append(res.FailureTest, GammaRates{Gamma: g,
			FalsePositive: shareOf(s.truth, func(x float64) bool { return x > g }),
			FalseNegative: shareOf(s.other, func(x float64) bool { return x <= g })})
		res.WitnessedTest = append(res.WitnessedTest, GammaRates{Gamma: g,
			FalsePositive: shareOf(s.truthW, func(x float64) bool { return x > g }),
			FalseNegative: shareOf(s.otherW, func(x float64) bool { return x <= g })})
	}
	return res, nil
}

func shareOf(xs []float64, f func(float64) bool) float64 {
	if len(xs) == 0 {
		return 0
	}
	k := 0
	for _, x := range xs {
		if f(x) {
			k++
		}
	}
	return round(float64(k)/float64(len(xs)), 6)
}

// onSend counts the lookup application's messages in the secure phase.
func (a *attackRun) onSend(m *core.Message) {
	if m.App != lookup.AppID || len(m.Payload) == 0 || m.Type != core.MsgRoute && m.Type != core.MsgDirect {
		return
	}
	b := uint64(transport.ModelFrameSize(m, handleSize))
	if a.filling {
		if m.Payload[0] >= 7 && m.Payload[0] <= 10 { // fill probe, answer, hello, hello reply
			a.fillMsgs++
			a.fillBytes += b
		}
		return
	}
	if a.sec == nil {
		return
	}
	switch m.Payload[0] {
	case 1, 2: // request, answer
		a.sec.testMsgs++
		a.sec.testBytes += b
	case 3, 4: // probe, claim
		a.sec.redundMsgs++
		a.sec.redundBytes += b
	case 5, 6: // the density refresh's request and reply
		a.sec.densMsgs++
		a.sec.densBytes += b
	case 11, 12: // a witness request's hops, a witness's reply
		a.sec.witMsgs++
		a.sec.witBytes += b
	}
}

// secureAnswered notes a secure lookup's end.
func (a *attackRun) secureAnswered(key id.ID, res lookup.Result, err error) {
	s := a.sec.res
	root, ok := a.r.nw.Root(key)
	honest := ok && !a.malicious(root.Index)
	if honest {
		s.HonestRoots++
	}
	if err != nil {
		s.Unanswered++
		return
	}
	if res.Answered {
		t := res.AnswerTest
		ratio := t.Ratio
		if !t.Closest || !t.Covers {
			ratio = math.Inf(1)
		}
		wratio := ratio
		if !t.WitnessesPassed() {
			wratio = math.Inf(1)
		}
		if t.Witnesses > 0 {
			s.Witnessed++
			if t.Contradicted {
				s.Contradicted++
			}
			if t.WitnessReplies < t.Witnesses {
				s.WitnessesMissing++
			}
		}
		switch {
		case ok && res.AnswerRoot == root.Self().ID:
			if honest {
				a.sec.truth = append(a.sec.truth, ratio)
				a.sec.truthW = append(a.sec.truthW, wratio)
			}
		default:
			a.sec.other = append(a.sec.other, ratio)
			a.sec.otherW = append(a.sec.otherW, wratio)
		}
	}
	if res.Redundant {
		s.RedundantRuns++
		s.Rounds += res.Rounds
	} else {
		s.PassedFirst++
	}
	if !ok || root.Self().ID != res.Root.ID {
		s.Wrong++
		return
	}
	s.Correct++
	if honest {
		s.CorrectHonest++
	}
	if res.Redundant {
		s.CorrectAfterRedundant++
	} else {
		s.CorrectAfterTest++
	}
}

// tables measures the share of colluders in the honest nodes' state.
func (a *attackRun) tables(constrained bool) {
	var prox, cons, leaves [2]int // attackers, all
	var exact, wrongCol, holes, blocks int
	live := a.r.nw.Live()
	count := func(c *[2]int, x id.ID) {
		c[1]++
		if n, ok := a.r.nw.Lookup(x); ok && a.malicious(n.Index) {
			c[0]++
		}
	}
	for i := range a.r.cfg.Nodes {
		if a.malicious(i) {
			continue
		}
		st := a.r.nw.Node(i).State()
		st.Table.ForEach(func(_, _ int, e routing.Entry) bool { count(&prox, e.ID); return true })
		if constrained && st.Constrained != nil {
			st.Constrained.ForEach(func(_, _ int, e routing.Entry) bool { count(&cons, e.ID); return true })
			ct := st.Constrained
			for r := range ct.Rows() {
				if r > 0 && ct.RowFill(r-1) == 0 && ct.RowFill(r) == 0 {
					break
				}
				for c := range ct.Cols() {
					if c == st.Self.ID.Digit(r, st.B()) {
						continue
					}
					want, ok := closestInBlock(live, ct.Point(r, c), r, st.B())
					if !ok || want == st.Self.ID {
						continue
					}
					blocks++
					e, filled := ct.Get(r, c)
					switch {
					case !filled:
						holes++
					case e.ID == want:
						exact++
					default:
						if n, ok := a.r.nw.Lookup(e.ID); ok && a.malicious(n.Index) {
							wrongCol++
						}
					}
				}
			}
		}
		for _, e := range st.Leaves.Members(nil) {
			count(&leaves, e.ID)
		}
	}
	share := func(c [2]int) float64 {
		if c[1] == 0 {
			return 0
		}
		return round(float64(c[0])/float64(c[1]), 6)
	}
	a.res.Tables = TableShares{Proximity: share(prox), Constrained: share(cons), Leaves: share(leaves)}
	if filled := blocks - holes; filled > 0 {
		a.res.Tables.ConstrainedExact = round(float64(exact)/float64(filled), 6)
		a.res.Tables.ConstrainedWrongColluder = round(float64(wrongCol)/float64(filled), 6)
		a.res.Tables.ConstrainedHoles = round(float64(holes)/float64(blocks), 6)
	}
}

// closestInBlock returns the id of live (sorted) closest to p among
// those that share p's first row+1 digits (base 2^b), false if none
// does.
func closestInBlock(live []id.ID, p id.ID, row, b int) (id.ID, bool) {
	if len(live) == 0 {
		return id.ID{}, false
	}
	w := id.Bits - b*(row+1)
	if w < 0 {
		return id.ID{}, false
	}
	pu := p.U128()
	lo := pu.Sub(pu.Low(w))
	in := func(x id.ID) bool { return x.U128().Sub(lo).Less(id.Pow2(w)) || w == id.Bits }
	i, _ := slices.BinarySearchFunc(live, p, func(x, y id.ID) int { return x.Cmp(y) })
	best, found := id.ID{}, false
	for _, j := range []int{i - 1, i} {
		if j < 0 || j >= len(live) || !in(live[j]) {
			continue
		}
		if !found || id.Closer(p, live[j], best) {
			best, found = live[j], true
		}
	}
	return best, found
}
