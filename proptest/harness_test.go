package proptest

import (
	"hash/fnv"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/leanovate/gopter"
)

const (
	// defaultCases is how many cases each property runs in a plain
	// `go test ./proptest/`.
	defaultCases = 200
	// shortCases is the count under -short (meant for -race).
	shortCases = 40
	// defaultSeed makes plain runs repeatable; PASTRY_PROPTEST_SEED varies
	// it.
	defaultSeed int64 = 20011112
	// simShrinks bounds shrinking for properties whose every case runs a
	// simulated overlay: each shrink step is a whole new simulation.
	simShrinks = 40
)

// caseCount is the number of cases a property must pass.
func caseCount(t *testing.T) int {
	if s := os.Getenv("PASTRY_PROPTEST_CASES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("PASTRY_PROPTEST_CASES=%q: want a positive integer", s)
		}
		return n
	}
	if testing.Short() {
		return shortCases
	}
	return defaultCases
}

// baseSeed is the run's seed: PASTRY_PROPTEST_SEED or the default.
func baseSeed(t *testing.T) int64 {
	if s := os.Getenv("PASTRY_PROPTEST_SEED"); s != "" {
		n, err := strconv.ParseInt(s, 0, 64)
		if err != nil {
			t.Fatalf("PASTRY_PROPTEST_SEED=%q: want an integer", s)
		}
		return n
	}
	return defaultSeed
}

// propSeed gives each property its own generator seed, so that properties
// sharing a generator still see different cases.
func propSeed(base int64, name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return base ^ int64(h.Sum64()>>1)
}

// checkProp runs one gopter property for caseCount cases and reports a
// failure with what is needed to repeat it. maxShrinks < 0 keeps gopter's
// default.
func checkProp(t *testing.T, name string, maxShrinks int, p gopter.Prop) {
	t.Helper()
	base := baseSeed(t)
	params := gopter.DefaultTestParametersWithSeed(propSeed(base, name))
	params.MinSuccessfulTests = caseCount(t)
	if maxShrinks >= 0 {
		params.MaxShrinkCount = maxShrinks
	}
	props := gopter.NewProperties(params)
	props.Property(name, p)
	var out strings.Builder
	if !props.Run(gopter.NewFormatedReporter(true, 120, &out)) {
		t.Errorf("%s\nproperty %q failed (gopter initial seed %d); repeat the run with\n\tPASTRY_PROPTEST_SEED=%d PASTRY_PROPTEST_CASES=%d go test -run '^%s$' ./proptest/",
			out.String(), name, params.Seed(), base, params.MinSuccessfulTests, t.Name())
		return
	}
	t.Log(strings.TrimSpace(out.String()))
}
