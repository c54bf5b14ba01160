package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/pastrynet/pastry/bench/sim"
)

// pastry sim --attack prints the attack section, and --json carries it;
// --gammas chooses the failure test's thresholds.
func TestSimAttack(t *testing.T) {
	args := []string{"--nodes", "60", "--lookups", "200", "--leaf", "8", "--malicious", "0.2", "--attack", "fake-root", "--gammas", "1.5, 3"}
	var out, errw bytes.Buffer
	if err := runSim(args, &out, &errw); err != nil {
		t.Fatal(err, errw.String())
	}
	for _, want := range []string{"attack      fake-root by 12 colluders", "routing   reached the true root", "γ=1.5", "γ=3"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := runSim(append(args, "--json"), &out, &errw); err != nil {
		t.Fatal(err)
	}
	var r sim.Result
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	if a := r.Attack; a == nil || a.Attack != "fake-root" || a.Malicious != 12 || len(a.FailureTest) != 2 || a.FailureTest[1].Gamma != 3 {
		t.Fatalf("--json attack section %+v", r.Attack)
	}
	if err := runSim([]string{"--attack", "drop", "--gammas", "1,x"}, &out, &errw); !errors.Is(err, errUsage) {
		t.Errorf("--gammas 1,x: %v, want a usage error", err)
	}
}
