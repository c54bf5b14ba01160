package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// testDaemon is a `pastry node` run in this process.
type testDaemon struct {
	d      *daemon
	cancel context.CancelFunc
	done   chan error
}

// startTestDaemon starts a daemon with args (plus loopback listen and API
// addresses) and waits until it has joined.
func startTestDaemon(t *testing.T, dataDir string, args ...string) *testDaemon {
	t.Helper()
	args = append([]string{"--data-dir", dataDir, "--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0", "--save-interval", "1s"}, args...)
	cfg, err := loadNodeConfig(args, env{}.get, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	d, err := startDaemon(cfg, newLogger(io.Discard, 0))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	td := &testDaemon{d: d, cancel: cancel, done: make(chan error, 1)}
	go func() { td.done <- d.run(ctx, nil) }()
	t.Cleanup(func() { td.stop(t) })
	select {
	case <-d.joined:
	case <-time.After(30 * time.Second):
		t.Fatalf("daemon did not join (status %s)", d.node.Status())
	}
	return td
}

// stop shuts the daemon down gracefully, as SIGINT does.
func (td *testDaemon) stop(t *testing.T) {
	if td.cancel == nil {
		return
	}
	td.cancel()
	td.cancel = nil
	select {
	case err := <-td.done:
		if err != nil {
			t.Errorf("daemon shutdown: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Errorf("daemon did not stop")
	}
}

// p2pAddr is the daemon's first address with /p2p/.
func (td *testDaemon) p2pAddr() string {
	return td.d.host.Addrs()[0].String() + "/p2p/" + td.d.host.ID().String()
}

// TestNodeRestart: a restarted node keeps its identity (DATA_DIR/key) and
// rejoins through the peers it saved in DATA_DIR/peers.json, with no
// --bootstrap.
func TestNodeRestart(t *testing.T) {
	checkLeaks(t)
	a := startTestDaemon(t, t.TempDir())
	if len(a.d.candidates()) != 0 {
		t.Fatal("the first node has bootstrap candidates")
	}
	dirB := t.TempDir()
	b := startTestDaemon(t, dirB, "--bootstrap", a.p2pAddr())
	idB := b.d.host.ID()
	waitFor(t, "A to know B", func() bool { return inLeafSet(a.d, idB) })
	b.stop(t)

	// Saved on shutdown: A's address, with its peer ID.
	data, err := os.ReadFile(filepath.Join(dirB, "peers.json"))
	if err != nil {
		t.Fatal(err)
	}
	var pf peersFile
	if err := json.Unmarshal(data, &pf); err != nil || pf.Version != 1 || len(pf.Peers) == 0 || pf.Peers[0] != a.p2pAddr() {
		t.Fatalf("peers.json: %s (%v)", data, err)
	}
	if st, _ := os.Stat(filepath.Join(dirB, "peers.json")); st.Mode().Perm() != 0o600 {
		t.Errorf("peers.json mode %v", st.Mode())
	}
	// B left gracefully: A dropped it.
	waitFor(t, "A to drop B", func() bool { return !inLeafSet(a.d, idB) })

	b2 := startTestDaemon(t, dirB) // no --bootstrap
	if b2.d.host.ID() != idB {
		t.Fatalf("restart changed the peer ID: %s -> %s", idB, b2.d.host.ID())
	}
	if c := b2.d.candidates(); len(c) != 1 || c[0].ID != a.d.host.ID() {
		t.Fatalf("rejoin candidates: %v", c)
	}
	if !inLeafSet(b2.d, a.d.host.ID()) {
		t.Fatal("B rejoined without A in its leaf set")
	}
	// At the first try: A's writer to B's old process found its stream
	// gone and wrote the join's reply on a new one (it used to drop it,
	// and the rejoin waited out the 10 s join timeout).
	if st, err := b2.d.node.Stats(context.Background()); err != nil || st.Core.JoinRetries != 0 {
		t.Fatalf("rejoin: %d join retries (%v), want 0", st.Core.JoinRetries, err)
	}
	waitFor(t, "A to know B again", func() bool { return inLeafSet(a.d, idB) })
	// Through the API too.
	var st statusJSON
	if code, body := apiGet(t, b2.d.api.Addr(), "/v1/status", "", &st); code != 200 || st.PeerID != idB.String() || st.Status != "joined" {
		t.Fatalf("status after restart: %d %s", code, body)
	}
}

// A node saves its first peers as soon as it has any, not at its first
// save interval: killed before that, it would restart alone, as a new
// overlay, until a neighbour's heartbeat found it.
func TestNodeSavesFirstPeersAtOnce(t *testing.T) {
	checkLeaks(t)
	dirA := t.TempDir()
	a := startTestDaemon(t, dirA, "--save-interval", "1h")
	b := startTestDaemon(t, t.TempDir(), "--save-interval", "1h", "--bootstrap", a.p2pAddr())
	idB := b.d.host.ID().String()
	waitFor(t, "A to save B", func() bool {
		data, err := os.ReadFile(filepath.Join(dirA, "peers.json"))
		var pf peersFile
		if err != nil || json.Unmarshal(data, &pf) != nil {
			return false
		}
		for _, p := range pf.Peers {
			if strings.HasSuffix(p, "/p2p/"+idB) {
				return true
			}
		}
		return false
	})
}

// TestNodeBootstrapFirst: explicit --bootstrap nodes come before saved
// peers, and an unreachable candidate is skipped for the next one.
func TestNodeBootstrapFirst(t *testing.T) {
	checkLeaks(t)
	a := startTestDaemon(t, t.TempDir())
	dir := t.TempDir()
	// A saved peer that does not answer: a closed port.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	ghost := "/ip4/127.0.0.1/tcp/" + strconv.Itoa(dead) + "/p2p/" + testPeer
	ghostAI, _ := parseBootstrap(ghost)
	if err := savePeers(dir, "", []peer.AddrInfo{ghostAI}, time.Now()); err != nil {
		t.Fatal(err)
	}
	b := startTestDaemon(t, dir, "--bootstrap", a.p2pAddr())
	c := b.d.candidates()
	if len(c) != 2 || c[0].ID != a.d.host.ID() || c[1].ID != ghostAI.ID {
		t.Fatalf("candidates %v", c)
	}
	// Saved peers first, bootstrap dead: the join moves on to A.
	dir2 := t.TempDir()
	aAI, _ := parseBootstrap(a.p2pAddr())
	savePeers(dir2, "", []peer.AddrInfo{ghostAI, aAI}, time.Now())
	start := time.Now()
	startTestDaemon(t, dir2)
	if d := time.Since(start); d > connectTimeout+10*time.Second {
		t.Errorf("joining past a dead saved peer took %v", d)
	}
}

// TestNodeAddrPolicy: --addr-policy reaches the host and the saved peers.
// A private-only node joins through a loopback node, and its saved peers
// lose the addresses the policy refuses (and the peers left with none); a
// public-only node dials no loopback address, yet a loopback node can
// still connect to it.
func TestNodeAddrPolicy(t *testing.T) {
	checkLeaks(t)
	a := startTestDaemon(t, t.TempDir())
	aAI, err := parseBootstrap(a.p2pAddr())
	if err != nil {
		t.Fatal(err)
	}
	pub := testAddrInfo(t, "/ip4/8.8.8.8/tcp/7701")
	mixed := testAddrInfo(t, "/ip4/8.8.4.4/tcp/7701", "/ip4/10.0.0.1/tcp/7701")
	dir := t.TempDir()
	if err := savePeers(dir, "", []peer.AddrInfo{aAI, pub, mixed}, time.Now()); err != nil {
		t.Fatal(err)
	}
	b := startTestDaemon(t, dir, "--addr-policy", "private")
	c := b.d.candidates()
	if len(c) != 2 || c[0].ID != aAI.ID || c[1].ID != mixed.ID || len(c[1].Addrs) != 1 || c[1].Addrs[0].String() != "/ip4/10.0.0.1/tcp/7701" {
		t.Fatalf("candidates under the private policy: %v", c)
	}
	if !inLeafSet(b.d, aAI.ID) {
		t.Fatal("the private-only node joined without A in its leaf set")
	}

	p := startTestDaemon(t, t.TempDir(), "--addr-policy", "public") // a new overlay
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.d.host.Connect(ctx, aAI); err == nil {
		t.Fatal("the public-only node dialled a loopback address")
	}
	pAI, _ := parseBootstrap(p.p2pAddr())
	if err := a.d.host.Connect(ctx, pAI); err != nil {
		t.Fatalf("a loopback node could not connect to the public-only node: %v", err)
	}
}

// TestNodeAnnounce: --announce replaces the addresses a node advertises;
// a node joining through it learns the announced address.
func TestNodeAnnounce(t *testing.T) {
	checkLeaks(t)
	const announced = "/ip4/203.0.113.7/tcp/7701"
	a := startTestDaemon(t, t.TempDir(), "--announce", announced)
	if as := a.d.host.Addrs(); len(as) != 1 || as[0].String() != announced {
		t.Fatalf("advertised %v, want %s", as, announced)
	}
	real := a.d.host.Network().ListenAddresses()[0].String() + "/p2p/" + a.d.host.ID().String()
	b := startTestDaemon(t, t.TempDir(), "--bootstrap", real)
	waitFor(t, "B to learn A's announced address", func() bool {
		for _, x := range b.d.host.Peerstore().Addrs(a.d.host.ID()) {
			if x.String() == announced {
				return true
			}
		}
		return false
	})
}

// TestNodeStartErrors: a port in use and an unusable data directory stop
// the node at once, with errors naming the setting.
func TestNodeStartErrors(t *testing.T) {
	checkLeaks(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--data-dir", t.TempDir(), "--listen", "/ip4/127.0.0.1/tcp/" + port}, []string{"--listen", "port is in use"}},
		{[]string{"--data-dir", t.TempDir(), "--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:" + port}, []string{"--api", "port is in use"}},
		{[]string{"--data-dir", filepath.Join(file, "x"), "--listen", "/ip4/127.0.0.1/tcp/0"}, []string{"--data-dir", "cannot create"}},
	} {
		cfg, err := loadNodeConfig(tc.args, env{}.get, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		d, err := startDaemon(cfg, newLogger(io.Discard, 0))
		if err == nil {
			d.close(context.Background())
			t.Errorf("%v: started", tc.args)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: %v does not mention %q", tc.args, err, w)
			}
		}
	}
}

func inLeafSet(d *daemon, p peer.ID) bool {
	inf := d.node.Info()
	for _, h := range append(inf.Left, inf.Right...) {
		if peer.ID(h.Addr) == p {
			return true
		}
	}
	return false
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
