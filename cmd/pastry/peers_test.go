package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pastrynet/pastry/secure"
)

func testAddrInfo(t *testing.T, addrs ...string) peer.AddrInfo {
	t.Helper()
	k, err := secure.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := peer.IDFromPrivateKey(k)
	ai := peer.AddrInfo{ID: p}
	for _, a := range addrs {
		ai.Addrs = append(ai.Addrs, ma.StringCast(a))
	}
	return ai
}

func TestPeersRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if peers, bad, err := loadPeers(dir); err != nil || bad != 0 || peers != nil {
		t.Fatalf("no file: %v %d %v", peers, bad, err)
	}
	a := testAddrInfo(t, "/ip4/10.0.0.1/tcp/7701", "/ip4/10.0.0.1/udp/7701/quic-v1")
	b := testAddrInfo(t, "/ip6/::1/tcp/7701")
	if err := savePeers(dir, "00ff", []peer.AddrInfo{a, b}, time.Unix(1e9, 0)); err != nil {
		t.Fatal(err)
	}
	peers, bad, err := loadPeers(dir)
	if err != nil || bad != 0 || len(peers) != 2 {
		t.Fatalf("load: %v %d %v", peers, bad, err)
	}
	if peers[0].ID != a.ID || len(peers[0].Addrs) != 2 || !peers[0].Addrs[1].Equal(a.Addrs[1]) || peers[1].ID != b.ID {
		t.Fatalf("loaded %v, saved %v %v", peers, a, b)
	}
	// Saving again replaces the file; no temporary files are left.
	if err := savePeers(dir, "00ff", []peer.AddrInfo{b}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if peers, _, _ := loadPeers(dir); len(peers) != 1 || peers[0].ID != b.ID {
		t.Fatalf("after resave: %v", peers)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != peersFileName {
		t.Fatalf("directory holds %v", entries)
	}
}

func TestPeersFileDamage(t *testing.T) {
	good := testAddrInfo(t, "/ip4/10.0.0.1/tcp/7701")
	goodAddr := "/ip4/10.0.0.1/tcp/7701/p2p/" + good.ID.String()
	for _, tc := range []struct {
		name, body string
		peers, bad int
		err        string
	}{
		{"corrupt", `{"version": 1, "peers": [`, 0, 0, "corrupt"},
		{"not json", "\x00\x01", 0, 0, "corrupt"},
		{"version", `{"version": 2, "peers": []}`, 0, 0, "version 2"},
		{"bad entries", `{"version": 1, "peers": ["garbage", "/ip4/10.0.0.1/tcp/1", "` + goodAddr + `"]}`, 1, 2, ""},
		{"too large", `{"version": 1, "peers": ["` + strings.Repeat("x", maxPeersFile) + `"]}`, 0, 0, "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, peersFileName), []byte(tc.body), 0o600)
			peers, bad, err := loadPeers(dir)
			if len(peers) != tc.peers || bad != tc.bad || (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("peers %d bad %d err %v; want %d %d %q", len(peers), bad, err, tc.peers, tc.bad, tc.err)
			}
		})
	}
	// Many entries are cut at maxSavedPeers.
	var many []peer.AddrInfo
	for range maxSavedPeers + 10 {
		many = append(many, testAddrInfo(t, "/ip4/10.0.0.2/tcp/1"))
	}
	dir := t.TempDir()
	if err := savePeers(dir, "", many, time.Now()); err != nil {
		t.Fatal(err)
	}
	if peers, _, err := loadPeers(dir); err != nil || len(peers) != maxSavedPeers {
		t.Fatalf("loaded %d peers (%v), want %d", len(peers), err, maxSavedPeers)
	}
}
