package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCompareEightNodes runs the whole comparison at 8 nodes and checks
// that both protocols answered every operation rightly, that the counters
// saw each protocol's traffic, and that the report is complete.
func TestCompareEightNodes(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Nodes, cfg.Lookups, cfg.KadLookups, cfg.Records, cfg.Publishes, cfg.Rounds = 8, 40, 16, 6, 10, 2
	cfg.Settle, cfg.Idle = 500*time.Millisecond, time.Second
	if testing.Short() {
		cfg.Lookups, cfg.KadLookups, cfg.Records, cfg.Publishes = 16, 8, 4, 4
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := run(ctx, cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range res.Ops {
		if o.Op == "publish" {
			if o.Count != cfg.Publishes || o.Failed != 0 || o.Subscribers != cfg.Nodes/2 || o.Delivered != o.Expected || o.Expected != cfg.Publishes*o.Subscribers {
				t.Errorf("%s %s: %d published, %d failed, %d of %d delivered to %d subscribers (errors %q)", o.Protocol, o.Call, o.Count, o.Failed, o.Delivered, o.Expected, o.Subscribers, o.Errors)
			}
			if o.P50Ms <= 0 || o.MsgsPerOpRaw <= 0 || o.BytesPerOpRaw <= 0 {
				t.Errorf("%s %s: p50 %v, %v messages, %v bytes per publish", o.Protocol, o.Call, o.P50Ms, o.MsgsPerOpRaw, o.BytesPerOpRaw)
			}
			continue
		}
		want := cfg.Records
		switch o.Call {
		case "Node.Lookup":
			want = cfg.Lookups
		case "GetClosestPeers", "FindPeer":
			want = cfg.KadLookups
		}
		if o.Count != want || o.Failed != 0 || o.Wrong != 0 || len(o.LatencyMs) != want {
			t.Errorf("%s %s: %d done, %d failed, %d wrong, %d latencies; want %d right (errors %q)", o.Protocol, o.Call, o.Count, o.Failed, o.Wrong, len(o.LatencyMs), want, o.Errors)
		}
		if o.P50Ms <= 0 || o.P99Ms < o.P50Ms {
			t.Errorf("%s %s: p50 %v p99 %v", o.Protocol, o.Call, o.P50Ms, o.P99Ms)
		}
		if o.MsgsPerOpRaw <= 0 || o.BytesPerOpRaw <= 0 {
			t.Errorf("%s %s: %v messages, %v bytes per operation counted", o.Protocol, o.Call, o.MsgsPerOpRaw, o.BytesPerOpRaw)
		}
	}
	for _, call := range []string{"GetClosestPeers", "FindPeer", "PutValue", "GetValue"} {
		if o := res.findOp(Kad, call); o.PerP50 < 1 {
			t.Errorf("kad-dht %s: median %v RPCs from its query events", call, o.PerP50)
		}
	}
	for _, p := range res.Protocols {
		if p.ReadyS <= 0 || p.SetupMsgs == 0 || p.SetupBytes == 0 || p.Order == 0 {
			t.Errorf("%s: ready %v s, %d messages, %d bytes, order %d", p.Name, p.ReadyS, p.SetupMsgs, p.SetupBytes, p.Order)
		}
		if p.AddedPerNode.Goroutines <= 0 {
			t.Errorf("%s: %v goroutines per node added", p.Name, p.AddedPerNode.Goroutines)
		}
	}
	if !strings.HasPrefix(res.proto(Pastry).Ready, "8 of 8 leaf sets exact") {
		t.Errorf("pastry ready: %q", res.proto(Pastry).Ready)
	}

	dir := t.TempDir()
	if err := writeReport(dir, res); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## Summary", "## Operations", "## Set-up and footprint", "| lookup p50 |", "GetClosestPeers", "## Publish to delivery", res.Command} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	// GossipSub is ready within milliseconds at 8 nodes, sometimes before
	// its tracer has seen the subscriptions' RPCs: the bytes the hosts
	// counted show its set-up traffic either way.
	if res.GossipSub == nil || res.GossipSub.SetupBytes == 0 {
		t.Errorf("gossipsub: %+v", res.GossipSub)
	}
	for _, f := range []string{LookupFigure, RecordFigure, MessagesFigure, FootprintFigure, PubsubFigure} {
		svg, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(svg), "<title>") || !strings.Contains(string(md), "("+f+")") {
			t.Errorf("%s: no title, or not linked from report.md", f)
		}
	}
	js, err := os.ReadFile(filepath.Join(dir, ResultsFile))
	if err != nil {
		t.Fatal(err)
	}
	var back Result
	dec := json.NewDecoder(strings.NewReader(string(js)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&back); err != nil {
		t.Fatal(err)
	}
	if len(back.Ops) != len(res.Ops) || back.Config != res.Config {
		t.Errorf("results.json does not round-trip")
	}
}

func TestParseArgs(t *testing.T) {
	for _, bad := range [][]string{
		{"--nodes", "1"}, {"--nodes", "1001"}, {"--transport", "udp"}, {"--order", "both"},
		{"--lookups", "0"}, {"--rounds", "0"}, {"--value-size", "0"}, {"--heartbeat", "-1s"}, {"extra"},
	} {
		if _, _, err := parseArgs(bad, io.Discard); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	cfg, out, err := parseArgs([]string{"--nodes", "50", "--order", "kad-first", "--out", "x"}, io.Discard)
	if err != nil || cfg.Nodes != 50 || cfg.Order != OrderKadFirst || out != "x" {
		t.Fatalf("%+v %q %v", cfg, out, err)
	}
}
