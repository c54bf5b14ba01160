package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

const latencyPeer = "12D3KooWQ93fLNrVaS4mtE3sDHWSk8KDwmTu1M9vzp3aqc8vhRpU"

func TestLatencyFile(t *testing.T) {
	p, err := peer.Decode(latencyPeer)
	if err != nil {
		t.Fatal(err)
	}
	d, err := parseLatencyFile([]byte(`{"default": "5ms", "peers": {"`+latencyPeer+`": "25ms"}}`), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if d.of(p) != 25*time.Millisecond || d.of("other") != 5*time.Millisecond {
		t.Fatalf("of = %v, %v; want 25ms, 5ms", d.of(p), d.of("other"))
	}
	// Without "default", --inject-delay is the default.
	if d, err = parseLatencyFile([]byte(`{"peers": {}}`), 7*time.Millisecond); err != nil || d.of(p) != 7*time.Millisecond {
		t.Fatalf("default from the flag: %v, %v", d, err)
	}
	for _, bad := range []string{
		``, `null x`, `[]`, `{"peers": {"nope": "1ms"}}`, `{"peers": {"` + latencyPeer + `": "1 ms"}}`,
		`{"peers": {"` + latencyPeer + `": "-1ms"}}`, `{"default": "11s"}`, `{"delay": "1ms"}`, `{} {}`,
	} {
		if _, err := parseLatencyFile([]byte(bad), 0); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestNodeInjectFlags(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "lat.json")
	if err := os.WriteFile(file, []byte(`{"peers": {"`+latencyPeer+`": "40ms"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(string) string { return "" }
	c, err := loadNodeConfig([]string{"--data-dir", dir, "--inject-delay", "50ms", "--inject-latency", file}, env, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := peer.Decode(latencyPeer)
	if c.delays == nil || c.delays.of(p) != 40*time.Millisecond || c.delays.of("x") != 50*time.Millisecond {
		t.Fatalf("delays %+v", c.delays)
	}
	if c, err = loadNodeConfig([]string{"--data-dir", dir}, env, io.Discard); err != nil || c.delays != nil {
		t.Fatalf("no flags: delays %+v, err %v", c.delays, err)
	}
	_, err = loadNodeConfig([]string{"--data-dir", dir, "--inject-delay", "1m"}, env, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--inject-delay") {
		t.Fatalf("1m accepted or error without the flag's name: %v", err)
	}
	_, err = loadNodeConfig([]string{"--data-dir", dir, "--inject-latency", filepath.Join(dir, "none")}, env, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--inject-latency") {
		t.Fatalf("missing file: %v", err)
	}
}

func FuzzLatencyFile(f *testing.F) {
	f.Add([]byte(`{"default": "5ms", "peers": {"` + latencyPeer + `": "25ms"}}`))
	f.Add([]byte(`{"peers": {}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := parseLatencyFile(data, 0)
		if err != nil {
			return
		}
		if d.def < 0 || d.def > maxInjectDelay {
			t.Fatalf("default %v out of bounds", d.def)
		}
		for p, v := range d.peers {
			if v < 0 || v > maxInjectDelay || p.Validate() != nil {
				t.Fatalf("peer %s: %v", p, v)
			}
		}
	})
}
