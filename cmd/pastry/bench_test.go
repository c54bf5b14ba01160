package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBenchFlags(t *testing.T) {
	env := func(k string) string {
		if k == "PASTRY_TOKEN" {
			return "envtoken"
		}
		return ""
	}
	f, err := parseBenchFlags([]string{"-n", "8", "--kill", "10", "--delay", "50ms", "--rate", "10mbit", "--shaper", "htb",
		"--subnet", "10.90.0.0/16", "--records", "0", "--latency-model", "sphere", "--latency-seed", "2"}, env, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c := f.cfg
	if c.N != 8 || c.KillPercent != 10 || c.InjectDelay != 50*time.Millisecond || c.Shaping.Rate != "10mbit" ||
		c.Shaping.Shaper != "htb" || c.Subnet.String() != "10.90.0.0/16" || c.Records != -1 || len(c.Matrix) != 8 ||
		!strings.Contains(c.MatrixName, "sphere") {
		t.Fatalf("config %+v", c)
	}
	dir := t.TempDir()
	targets := filepath.Join(dir, "t.json")
	if err := os.WriteFile(targets, []byte(`{"nodes": [{"api": "http://10.0.0.1:7700"}, {"api": "http://10.0.0.2:7700", "token": "own"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err = parseBenchFlags([]string{"--targets", targets}, env, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if ts := f.cfg.Targets; len(ts) != 2 || ts[0].Token != "envtoken" || ts[1].Token != "own" || f.cfg.N != 2 {
		t.Fatalf("targets %+v", ts)
	}
	for _, bad := range [][]string{
		{"--shaper", "cbq"}, {"--delay-mode", "tc"}, {"--delay", "11s"}, {"--subnet", "10.90.0.0"},
		{"--latency-model", "torus"}, {"--latency-model", "plane", "--latency-matrix", targets},
		{"--latency-matrix", targets}, {"--targets", filepath.Join(dir, "none")}, {"--rate", "1 mbit"}, {"extra"},
	} {
		if _, err := parseBenchFlags(bad, env, io.Discard); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
