package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/replication/pebblestore"
	"github.com/pastrynet/pastry/secure"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDevnetExitAfter runs the devnet command end to end: four nodes,
// the node list, the ready line and file, then exit 0 after --exit-after.
func TestDevnetExitAfter(t *testing.T) {
	checkLeaks(t)
	ready := filepath.Join(t.TempDir(), "sub", "ready.json")
	var out, errOut syncBuffer
	start := time.Now()
	code := make(chan int, 1)
	go func() {
		code <- run([]string{"devnet", "-n", "4", "--api-base", "0", "--exit-after", "1500ms", "--ready-file", ready}, &out, &errOut)
	}()
	select {
	case c := <-code:
		if c != 0 {
			t.Fatalf("exit code %d\nstdout:\n%s\nstderr:\n%s", c, out.String(), errOut.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("devnet did not exit\nstdout:\n%s\nstderr:\n%s", out.String(), errOut.String())
	}
	if d := time.Since(start); d < 1500*time.Millisecond {
		t.Errorf("exited after %v, before --exit-after", d)
	}
	so := out.String()
	if !regexp.MustCompile(`(?m)^ready: 4 nodes joined in \S+ over tcp, all leaf sets exact`).MatchString(so) {
		t.Errorf("no ready line:\n%s", so)
	}
	lines := regexp.MustCompile(`(?m)^(\d+)\s+([0-9a-f]{32})\s+(12D3Koo\w+)\s+(127\.0\.0\.1:\d+)$`).FindAllStringSubmatch(so, -1)
	if len(lines) != 4 {
		t.Fatalf("want 4 node lines:\n%s", so)
	}
	var rf readyFile
	data, err := os.ReadFile(ready)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &rf); err != nil {
		t.Fatal(err)
	}
	if rf.Protocol != "/pastry/1.0.0" || len(rf.Nodes) != 4 {
		t.Fatalf("ready file: %s", data)
	}
	for i, n := range rf.Nodes {
		if n.Index != i || n.NodeID != lines[i][2] || n.PeerID != lines[i][3] || n.API != lines[i][4] ||
			len(n.Addrs) == 0 || !strings.HasSuffix(n.Addrs[0], "/p2p/"+n.PeerID) {
			t.Errorf("ready file node %d: %+v, printed %q", i, n, lines[i][0])
		}
	}
	if !strings.Contains(so, "stopped: nodes closed in") {
		t.Errorf("no stop report in %q", so)
	}
	if !strings.Contains(so, "stopping 4 nodes") {
		t.Errorf("no stop line:\n%s", so)
	}
}

func TestDevnetFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-n", "0"}, "-n 0"},
		{[]string{"-n", "5000"}, "-n 5000"},
		{[]string{"--api-base", "80"}, "--api-base 80"},
		{[]string{"-n", "10", "--api-base", "65530"}, "--api-base 65530"},
		{[]string{"--transport", "udp"}, "--transport"},
		{[]string{"--batch", "0"}, "--batch 0"},
		{[]string{"--exit-after", "-1s"}, "--exit-after"},
		{[]string{"--heartbeat", "1ms"}, "--heartbeat"},
		{[]string{"--protocol-prefix", "x"}, "--protocol-prefix"},
		{[]string{"--log-level", "chatty"}, "--log-level"},
	} {
		var errOut bytes.Buffer
		_, err := parseDevnetFlags(tc.args, &errOut)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error naming %q", tc.args, err, tc.want)
		}
	}
	c, err := parseDevnetFlags([]string{"-n", "200"}, io.Discard)
	if err != nil || c.transport != "quic" {
		t.Errorf("-n 200 runs over %q (%v), want quic", c.transport, err)
	}
	c, err = parseDevnetFlags(nil, io.Discard)
	if err != nil || c.transport != "tcp" || c.n != 16 || c.apiBase != 7700 {
		t.Errorf("defaults: %+v %v", c, err)
	}
}

// TestDevnetAPIPortInUse: a taken API port stops the devnet with an error
// naming the flag and the port.
func TestDevnetAPIPortInUse(t *testing.T) {
	checkLeaks(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	base := port - 1 // node 1's API collides
	if base < 1024 {
		t.Skip("free port too low for the test")
	}
	var out, errOut bytes.Buffer
	err = devnetMain(context.Background(), []string{"-n", "2", "--api-base", strconv.Itoa(base)}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "--api-base") || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("err = %v", err)
	}
}

// TestClientsAgainstDevnet runs the client commands in this process
// against a running devnet: route (text and --json), status, table, id.
func TestClientsAgainstDevnet(t *testing.T) {
	checkLeaks(t)
	ready := filepath.Join(t.TempDir(), "ready.json")
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- devnetMain(ctx, []string{"-n", "5", "--api-base", "0", "--ready-file", ready, "--pprof"}, &out, &errOut)
	}()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("devnet: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("devnet did not stop")
		}
	}()
	var rf readyFile
	deadline := time.Now().Add(60 * time.Second)
	for {
		if data, err := os.ReadFile(ready); err == nil && json.Unmarshal(data, &rf) == nil {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("devnet ended: %v\n%s", err, errOut.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("devnet not ready:\n%s\n%s", out.String(), errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	var ids []id.ID
	for _, n := range rf.Nodes {
		x, err := id.Parse(n.NodeID)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, x)
	}
	slices.SortFunc(ids, func(a, b id.ID) int { return a.Cmp(b) })
	api := rf.Nodes[2].API
	cli := func(args ...string) (int, string, string) {
		var o, e bytes.Buffer
		c := run(args, &o, &e)
		return c, o.String(), e.String()
	}

	key := "0123456789abcdef0123456789abcdef"
	k, _ := id.Parse(key)
	want := ids[0]
	for _, x := range ids[1:] {
		if id.Closer(k, x, want) {
			want = x
		}
	}
	var wantPeer string
	for _, n := range rf.Nodes {
		if n.NodeID == want.String() {
			wantPeer = n.PeerID
		}
	}
	code, so, se := cli("route", "--api", api, key)
	if code != 0 || !strings.Contains(so, "root     "+want.String()+"\npeer id  "+wantPeer+"\n") || !strings.Contains(so, "path     0. "+rf.Nodes[2].NodeID) ||
		!regexp.MustCompile(`latency  \d+\.\d{3} ms`).MatchString(so) {
		t.Errorf("route: %d\n%s%s", code, so, se)
	}
	code, so, _ = cli("route", "--json", "--api", "http://"+api, key)
	var rt routeJSON
	if code != 0 || json.Unmarshal([]byte(so), &rt) != nil || rt.Root != want.String() || rt.Key != key {
		t.Errorf("route --json: %d %s", code, so)
	}
	code, _, se = cli("route", "--api", api, "not-a-key")
	if code != 1 || !strings.Contains(se, "bad key") {
		t.Errorf("route with a bad key: %d %s", code, se)
	}
	code, _, se = cli("route", "--api", api)
	if code != 2 || !strings.Contains(se, "usage: pastry route") {
		t.Errorf("route without a key: %d %s", code, se)
	}
	code, so, _ = cli("status", "--api", api)
	if code != 0 || !strings.Contains(so, "status        joined") || !strings.Contains(so, "peer id       "+rf.Nodes[2].PeerID) ||
		!strings.Contains(so, "leaf set      4 left, 4 right") || !strings.Contains(so, "~5 nodes") ||
		!strings.Contains(so, "version       "+readVersion().Short()+"\n") {
		t.Errorf("status: %d\n%s", code, so)
	}
	code, so, _ = cli("status", "--json", "--api", api)
	var st statusJSON
	if code != 0 || json.Unmarshal([]byte(so), &st) != nil || st.NodeID != rf.Nodes[2].NodeID {
		t.Errorf("status --json: %d %s", code, so)
	}
	code, so, _ = cli("table", "--api", api)
	if code != 0 || !strings.Contains(so, "routing table: ") || !strings.Contains(so, "  left (4, closest first)") || !strings.Contains(so, "row  0: ") {
		t.Errorf("table: %d\n%s", code, so)
	}
	code, so, _ = cli("table", "--json", "--api", api)
	var tb tableJSON
	if code != 0 || json.Unmarshal([]byte(so), &tb) != nil || len(tb.LeafSet.Right) != 4 {
		t.Errorf("table --json: %d %s", code, so)
	}
	code, so, _ = cli("id", "--api", api)
	if code != 0 || so != "node id  "+rf.Nodes[2].NodeID+"\npeer id  "+rf.Nodes[2].PeerID+"\n" {
		t.Errorf("id: %d %q", code, so)
	}
	// --pprof: node 0's API serves the process's profiles, the others not.
	if code, body := apiGet(t, rf.Nodes[0].API, "/debug/pprof/goroutine?debug=1", "", nil); code != 200 || !strings.HasPrefix(string(body), "goroutine profile: ") {
		t.Errorf("pprof on node 0: %d %.60q", code, body)
	}
	if code, _ := apiGet(t, api, "/debug/pprof/goroutine?debug=1", "", nil); code != http.StatusNotFound {
		t.Errorf("pprof on node 2: %d, want 404", code)
	}
	t.Setenv("PASTRY_API", api) // the environment's API address
	if code, so, _ = cli("id"); code != 0 || !strings.Contains(so, rf.Nodes[2].NodeID) {
		t.Errorf("id with PASTRY_API: %d %q", code, so)
	}
}

// TestDevnetSecure: `pastry devnet --secure` certifies its nodes with an
// authority in memory; they join, and their ids are the certified ones,
// not those their keys derive.
func TestDevnetSecure(t *testing.T) {
	checkLeaks(t)
	var out, errOut syncBuffer
	if c := run([]string{"devnet", "-n", "4", "--secure", "--api-base", "0", "--exit-after", "500ms"}, &out, &errOut); c != 0 {
		t.Fatalf("exit code %d\nstdout:\n%s\nstderr:\n%s", c, out.String(), errOut.String())
	}
	so := out.String()
	if !regexp.MustCompile(`(?m)^ready: 4 nodes joined in \S+ over tcp, all leaf sets exact`).MatchString(so) {
		t.Fatalf("no ready line:\n%s", so)
	}
	lines := regexp.MustCompile(`(?m)^(\d+)\s+([0-9a-f]{32})\s+(12D3Koo\w+)\s+(127\.0\.0\.1:\d+)$`).FindAllStringSubmatch(so, -1)
	if len(lines) != 4 {
		t.Fatalf("want 4 node lines:\n%s", so)
	}
	for _, l := range lines {
		p, err := peer.Decode(l[3])
		if err != nil {
			t.Fatal(err)
		}
		if x, err := secure.NodeIDFromPeer(p); err != nil || x.String() == l[2] {
			t.Errorf("node %s: id %s derived from its key (%v), not certified", l[1], l[2], err)
		}
	}
}

// TestDevnetMalicious: `--malicious 2` makes the last 2 nodes attackers,
// marked so; they join like the others. Bad values are refused.
func TestDevnetMalicious(t *testing.T) {
	checkLeaks(t)
	var out, errOut syncBuffer
	if c := run([]string{"devnet", "-n", "5", "--secure", "--malicious", "2", "--attack", "drop", "--api-base", "0", "--exit-after", "300ms"}, &out, &errOut); c != 0 {
		t.Fatalf("exit code %d\nstdout:\n%s\nstderr:\n%s", c, out.String(), errOut.String())
	}
	so := out.String()
	if !regexp.MustCompile(`(?m)^ready: 5 nodes joined`).MatchString(so) {
		t.Fatalf("no ready line:\n%s", so)
	}
	marked := regexp.MustCompile(`(?m)^([34])\s+[0-9a-f]{32}\s+12D3Koo\w+\s+127\.0\.0\.1:\d+ attacker \(drop\)$`).FindAllString(so, -1)
	if len(marked) != 2 || strings.Count(so, "attacker") != 2 {
		t.Fatalf("want nodes 3 and 4 marked as attackers:\n%s", so)
	}
	for _, args := range [][]string{{"-n", "4", "--malicious", "4"}, {"--malicious", "-1"}, {"--malicious", "1", "--attack", "suppress"}, {"--attack", "nonsense"}} {
		if _, err := parseDevnetFlags(args, io.Discard); err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
}

// TestDevnetDataDir: --data-dir puts each node's record store on disk in
// DIR/node-i, closed cleanly at exit (each opens again); a --data-dir that
// is a file is refused with the store's error.
func TestDevnetDataDir(t *testing.T) {
	checkLeaks(t)
	dir := t.TempDir()
	var out, errOut syncBuffer
	if c := run([]string{"devnet", "-n", "3", "--data-dir", dir, "--api-base", "0", "--exit-after", "300ms"}, &out, &errOut); c != 0 {
		t.Fatalf("exit code %d\nstdout:\n%s\nstderr:\n%s", c, out.String(), errOut.String())
	}
	for i := range 3 {
		st, err := pebblestore.Open(filepath.Join(dir, fmt.Sprintf("node-%d", i)), pebblestore.Config{})
		if err != nil {
			t.Fatalf("node %d's store after the devnet: %v", i, err)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out2, errOut2 syncBuffer
	if c := run([]string{"devnet", "-n", "2", "--data-dir", file, "--api-base", "0", "--exit-after", "100ms"}, &out2, &errOut2); c == 0 || !strings.Contains(errOut2.String(), "record store") {
		t.Fatalf("--data-dir on a file: exit code %d, stderr:\n%s", c, errOut2.String())
	}
}
