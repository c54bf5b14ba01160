package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pastrynet/pastry"
	"github.com/pastrynet/pastry/id"
)

// peersFile is DATA_DIR/peers.json: the peers a node knew when it last
// saved, to rejoin through after a restart.
//
//	{"version": 1, "saved": "2026-01-02T15:04:05Z", "node_id": "…",
//	 "peers": ["/ip4/10.0.0.2/tcp/7701/p2p/12D3KooW…", …]}
//
// Each entry is one address of one peer, with /p2p/PEERID, in the order to
// try: leaf set (closest first, alternating sides), neighbourhood set,
// then routing-table entries.
type peersFile struct {
	Version int       `json:"version"`
	Saved   time.Time `json:"saved"`
	NodeID  string    `json:"node_id,omitempty"`
	Peers   []string  `json:"peers"`
}

const (
	peersFileName    = "peers.json"
	peersFileVersion = 1
	maxSavedPeers    = 64      // peers per file
	maxAddrsPerPeer  = 8       // addresses saved per peer
	maxPeersFile     = 1 << 20 // bytes read at most
)

// knownPeers lists the peers worth saving from a node's state, each with
// the addresses h's peerstore holds for it (peers without are skipped).
func knownPeers(inf pastry.Info, h host.Host, limit int) []peer.AddrInfo {
	var order []id.Handle
	for i := range max(len(inf.Left), len(inf.Right)) {
		if i < len(inf.Left) {
			order = append(order, inf.Left[i])
		}
		if i < len(inf.Right) {
			order = append(order, inf.Right[i])
		}
	}
	order = append(order, inf.Neighbors...)
	for _, row := range inf.Rows {
		order = append(order, row...)
	}
	seen := map[peer.ID]bool{inf.PeerID: true}
	var out []peer.AddrInfo
	for _, hd := range order {
		if len(out) >= limit {
			break
		}
		p := peer.ID(hd.Addr)
		if seen[p] {
			continue
		}
		seen[p] = true
		addrs := h.Peerstore().Addrs(p)
		if len(addrs) == 0 {
			continue
		}
		out = append(out, peer.AddrInfo{ID: p, Addrs: addrs[:min(len(addrs), maxAddrsPerPeer)]})
	}
	return out
}

// savePeers writes peers to dir/peers.json atomically: a temporary file in
// the same directory, synced, then renamed over the old one.
func savePeers(dir string, nodeID string, peers []peer.AddrInfo, now time.Time) error {
	pf := peersFile{Version: peersFileVersion, Saved: now.UTC().Truncate(time.Second), NodeID: nodeID, Peers: []string{}}
	for _, ai := range peers {
		addrs, err := peer.AddrInfoToP2pAddrs(&ai)
		if err != nil {
			continue
		}
		for _, a := range addrs {
			pf.Peers = append(pf.Peers, a.String())
		}
	}
	data, err := json.MarshalIndent(pf, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	return writeFileAtomic(filepath.Join(dir, peersFileName), data, 0o600)
}

// loadPeers reads dir/peers.json. A missing file gives no peers and no
// error. Entries that --bootstrap would refuse are skipped and reported in
// bad; repeated addresses are dropped, and at most maxSavedPeers peers of
// maxAddrsPerPeer addresses each are kept. A file that is not a peers
// file at all is an error (the caller logs it and goes on without saved
// peers).
func loadPeers(dir string) (peers []peer.AddrInfo, bad int, err error) {
	path := filepath.Join(dir, peersFileName)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPeersFile+1))
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > maxPeersFile {
		return nil, 0, fmt.Errorf("%s is larger than %d bytes: not a peers file", path, maxPeersFile)
	}
	var pf peersFile
	if err := json.Unmarshal(data, &pf); err != nil {
		return nil, 0, fmt.Errorf("%s is corrupt (%v): it will be rewritten", path, err)
	}
	if pf.Version != peersFileVersion {
		return nil, 0, fmt.Errorf("%s has version %d, want %d: it will be rewritten", path, pf.Version, peersFileVersion)
	}
	for _, s := range pf.Peers {
		ai, err := parseBootstrap(s) // what --bootstrap accepts
		if err != nil {
			bad++
			continue
		}
		i := slices.IndexFunc(peers, func(p peer.AddrInfo) bool { return p.ID == ai.ID })
		switch {
		case i < 0 && len(peers) == maxSavedPeers:
			return peers, bad, nil
		case i < 0:
			peers = append(peers, ai)
		case len(peers[i].Addrs) < maxAddrsPerPeer && !slices.ContainsFunc(peers[i].Addrs, ai.Addrs[0].Equal):
			peers[i].Addrs = append(peers[i].Addrs, ai.Addrs[0])
		}
	}
	return peers, bad, nil
}

// writeFileAtomic replaces path with data so that a crash leaves the old
// file or the new one, never a mix.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*.tmp")
	if err != nil {
		return err
	}
	name := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			os.Remove(name)
		}
	}()
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(name, path); err != nil {
		return err
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
