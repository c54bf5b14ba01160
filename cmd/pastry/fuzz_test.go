package main

// Fuzz targets for the decoders of package main, which fuzz/ cannot
// import: the config file and the PASTRY_* variables, the peers file,
// bootstrap multiaddrs, keys, log levels and the CLI client's reading of
// the API's answers. As in fuzz/, each checks properties beyond the
// absence of panics: bad input gets a clear error that names where it came
// from and changes nothing (no partial result, no file touched), and what
// is accepted holds the documented bounds and round-trips.
//
//	go test -run='^$' -fuzz='^FuzzConfigFile$' -fuzztime=60s ./cmd/pastry/

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/secure"
	"github.com/pastrynet/pastry/transport"
)

// fuzzPeers returns n deterministic peer IDs of Ed25519 keys, as pastry
// nodes have.
func fuzzPeers(tb testing.TB, n int) []peer.ID {
	tb.Helper()
	out := make([]peer.ID, n)
	for i := range out {
		var seed [32]byte
		seed[0], seed[1] = byte(i), 0x9a
		k, err := secure.GenerateKey(mrand.NewChaCha8(seed))
		if err != nil {
			tb.Fatal(err)
		}
		if out[i], err = peer.IDFromPrivateKey(k); err != nil {
			tb.Fatal(err)
		}
	}
	return out
}

// foreignPeer is a valid libp2p peer ID that no pastry node can have (a
// secp256k1 key).
func foreignPeer(tb testing.TB) peer.ID {
	tb.Helper()
	k, _, err := crypto.GenerateSecp256k1Key(bytes.NewReader(bytes.Repeat([]byte{5}, 64)))
	if err != nil {
		tb.Fatal(err)
	}
	p, err := peer.IDFromPrivateKey(k)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// dirSnapshot maps each file under dir to its contents and mode.
func dirSnapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		v := info.Mode().String()
		if d.Type().IsRegular() {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			v += ":" + string(b)
		}
		out[path] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkPeerInfo asserts that ai is a peer a node can join through: a
// pastry peer ID and at least one address, none naming a peer itself.
func checkPeerInfo(t *testing.T, what string, ai peer.AddrInfo) {
	t.Helper()
	if _, err := secure.NodeIDFromPeer(ai.ID); err != nil {
		t.Fatalf("%s: accepted peer %q: %v", what, ai.ID, err)
	}
	if len(ai.Addrs) == 0 {
		t.Fatalf("%s: accepted peer %s without an address", what, ai.ID)
	}
	for _, a := range ai.Addrs {
		if a == nil || len(a) == 0 {
			t.Fatalf("%s: peer %s has an empty address", what, ai.ID)
		}
		if a[len(a)-1].Code() == ma.P_P2P {
			t.Fatalf("%s: address %s of %s ends in /p2p", what, a, ai.ID)
		}
	}
}

// sameAddrInfos compares lists of peers, addresses by their bytes.
func sameAddrInfos(a, b []peer.AddrInfo) bool {
	return slices.EqualFunc(a, b, func(x, y peer.AddrInfo) bool {
		return x.ID == y.ID && slices.EqualFunc(x.Addrs, y.Addrs, func(p, q ma.Multiaddr) bool { return p.Equal(q) })
	})
}

// --- config ----------------------------------------------------------

// configSeeds are config files: valid ones (those of config_test.go and
// the README) and broken ones.
func configSeeds(tb testing.TB) []string {
	ps := fuzzPeers(tb, 2)
	valid := fileConfigAll
	readme := `{
  "listen": ["/ip4/0.0.0.0/tcp/7701", "/ip4/0.0.0.0/udp/7701/quic-v1"],
  "bootstrap": ["/ip4/10.0.0.1/tcp/7701/p2p/` + ps[0].String() + `"],
  "data_dir": "/var/lib/pastry",
  "api": "127.0.0.1:7700",
  "save_interval": "30s"
}`
	return []string{
		valid, readme, `{}`, "{}\n",
		`{"api": "0.0.0.0:7700", "token": "0123456789abcdef0123", "log_level": "WARN", "conns_low": 1, "conns_high": 10000}`,
		`{"api": "off", "listen": ["/ip6/::1/udp/0/quic-v1"], "save_interval": "1h"}`,
		`{"bootstrap": ["/ip4/10.0.0.1/tcp/1/p2p/` + ps[0].String() + `", "/ip6/::1/udp/2/quic-v1/p2p/` + ps[0].String() + `", "/dns4/x.example/tcp/3/p2p/` + ps[1].String() + `"]}`,
		`{"listen": null, "api": null}`,
		`{"ca_pub": "/etc/pastry/ca.pub", "cert": "node.cert", "network": "mynet"}`,
		`{"store_capacity": 1073741824, "owner_quota": 1048576, "route_cache": 0}`,
		// Refused.
		`{"store_capacity": -1}`, `{"owner_quota": "1GiB"}`, `{"route_cache": 1e20}`, `{"store_capacity": 2251799813685249}`,
		`{"listen": []}`, `{"listn": ["/ip4/127.0.0.1/tcp/1"]}`, "{\n  \"api\": \"127.0.0.1:1\",\n  oops\n}",
		`{"conns_low": "ten"}`, `{} {}`, `{"save_interval": 5}`, `{"save_interval": "often"}`,
		`{"save_interval": "10ms"}`, `{"conns_low": 500}`, `{"conns_low": 0}`, `{"conns_high": 1e9}`,
		`{"token": "short"}`, `{"token": "0123456789 abcdefgh"}`, `{"protocol_prefix": "net/"}`, `{"log_level": "loud"}`,
		`{"data_dir": ""}`, `{"listen": ["/ip4/127.0.0.1/udp/1"]}`, `{"listen": ["/ip4/127.0.0.1/tcp/1/p2p/` + testPeer + `"]}`,
		`{"bootstrap": ["/ip4/127.0.0.1/tcp/1"]}`, `{"bootstrap": ["/p2p/` + testPeer + `"]}`,
		`{"api": "127.0.0.1:99999"}`, `{"api": "[::]:7700"}`, `[]`, `"x"`, ``, "\xef\xbb\xbf{}",
		`{"cert": "node.cert"}`, `{"ca_pub": "p", "cert": "c", "network": "my net"}`,
		// Accepted before this target existed, refused since: data after
		// the object, keys matched ignoring case (even "ſ" for "s"), keys
		// given twice, null, a log level that wraps around to below debug,
		// a peer ID that no pastry node has, an address naming two peers.
		`{}]`, `{"api": "127.0.0.1:1"}}`, `{"API": "127.0.0.2:1"}`, `{"ſave_interval": "1s"}`,
		`{"api": "127.0.0.1:1", "api": "127.0.0.1:2"}`, `null`, `{"log_level": "error+9223372036854775807"}`,
		`{"log_level": "info+2"}`, `{"bootstrap": ["/ip4/127.0.0.1/tcp/1/p2p/` + foreignPeer(tb).String() + `"]}`,
		`{"bootstrap": ["/p2p/` + ps[1].String() + `/p2p/` + testPeer + `"]}`,
		// Accepted: an escaped key is the key.
		`{"\u0061pi": "127.0.0.1:1"}`,
	}
}

// fileValues decodes a config file independently of applyFile: its keys
// in order (duplicates kept) and their raw values.
func fileValues(data []byte) (keys []string, vals map[string]json.RawMessage, err error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil, fmt.Errorf("not an object")
	}
	vals = map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, err
		}
		k := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, nil, err
		}
		keys = append(keys, k)
		vals[k] = v
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, fmt.Errorf("more after the object (%v)", err)
	}
	return keys, vals, nil
}

// checkConfigBounds asserts the documented bounds of an accepted config,
// checked again here rather than through validate.
func checkConfigBounds(t *testing.T, c *nodeConfig) {
	t.Helper()
	if n := len(c.Listen); n < 1 {
		t.Fatal("accepted no listen address")
	}
	checkAddrList(t, "listen", c.Listen, false)
	if len(c.Bootstrap) > maxBootstrap {
		t.Fatalf("accepted %d bootstrap addresses", len(c.Bootstrap))
	}
	checkAddrList(t, "announce", c.Announce, true)
	naddrs, ids := 0, map[peer.ID]bool{}
	for _, ai := range c.bootstrap {
		checkPeerInfo(t, "bootstrap", ai)
		if ids[ai.ID] {
			t.Fatalf("bootstrap peer %s listed twice", ai.ID)
		}
		ids[ai.ID] = true
		naddrs += len(ai.Addrs)
	}
	if naddrs != len(c.Bootstrap) {
		t.Fatalf("%d bootstrap addresses parsed from %d", naddrs, len(c.Bootstrap))
	}
	if c.DataDir == "" {
		t.Fatal("accepted an empty data dir")
	}
	if tok := c.Token; tok != "" {
		if len(tok) < minTokenLen || len(tok) > maxTokenLen || strings.IndexFunc(tok, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0 {
			t.Fatalf("accepted token %q", tok)
		}
	}
	if c.API != apiOff {
		host, port, err := net.SplitHostPort(c.API)
		p, perr := strconv.Atoi(port)
		if err != nil || perr != nil || p < 0 || p > 65535 {
			t.Fatalf("accepted API address %q", c.API)
		}
		ip := net.ParseIP(host)
		if c.Token == "" && !strings.EqualFold(host, "localhost") && (ip == nil || !ip.IsLoopback()) {
			t.Fatalf("accepted API address %q, reachable from the network, without a token", c.API)
		}
	} else if c.Pprof {
		t.Fatal("accepted pprof with the API off")
	}
	if p := c.ProtocolPrefix; p != "" {
		if len(p) > maxPrefixLen || p[0] != '/' || p[len(p)-1] == '/' || strings.IndexFunc(p, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0 {
			t.Fatalf("accepted protocol prefix %q", p)
		}
	}
	checkLevel(t, c.LogLevel, c.level)
	if c.SaveInterval < time.Second || c.SaveInterval > time.Hour {
		t.Fatalf("accepted save interval %v", c.SaveInterval)
	}
	for _, v := range []int64{c.StoreCapacity, c.OwnerQuota, c.RouteCache} {
		if v < 0 || v > maxStoreBytes {
			t.Fatalf("accepted a byte setting of %d", v)
		}
	}
	if c.ConnsLow < 1 || c.ConnsHigh < c.ConnsLow || c.ConnsHigh > maxConns {
		t.Fatalf("accepted conns %d to %d", c.ConnsLow, c.ConnsHigh)
	}
	if !strings.EqualFold(c.AddrPolicy, c.policy.String()) || c.policy > transport.AddrsPrivate {
		t.Fatalf("accepted address policy %q as %v", c.AddrPolicy, c.policy)
	}
	if (c.Cert == "") != (c.CAPub == "") || (c.Cert == "") != (c.Network == "") || (c.Network != "" && secure.CheckNetworkName(c.Network) != nil) {
		t.Fatalf("accepted certificate settings %q, %q, network %q", c.Cert, c.CAPub, c.Network)
	}
	for _, ai := range c.bootstrap {
		for _, a := range ai.Addrs {
			if !c.policy.Allows(a) {
				t.Fatalf("accepted bootstrap address %s, which the policy %v refuses", a, c.policy)
			}
		}
	}
	// Validation is idempotent.
	again := *c
	if err := again.validate(); err != nil || !sameAddrInfos(again.bootstrap, c.bootstrap) || again.level != c.level {
		t.Fatalf("validating an accepted config again: %v", err)
	}
}

// checkAddrList asserts that accepted listen or announce addresses are at
// most maxListen TCP or QUIC multiaddrs without /p2p/; announced ones
// (dialable) also name a port and an IP others can dial.
func checkAddrList(t *testing.T, kind string, list []string, dialable bool) {
	t.Helper()
	if len(list) > maxListen {
		t.Fatalf("accepted %d %s addresses", len(list), kind)
	}
	for _, s := range list {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			t.Fatalf("accepted %s address %q: %v", kind, s, err)
		}
		_, p2pErr := a.ValueForProtocol(ma.P_P2P)
		tcp, tcpErr := a.ValueForProtocol(ma.P_TCP)
		_, quicErr := a.ValueForProtocol(ma.P_QUIC_V1)
		if p2pErr == nil || (tcpErr != nil && quicErr != nil) {
			t.Fatalf("accepted %s address %q", kind, s)
		}
		if !dialable {
			continue
		}
		if tcpErr != nil {
			tcp, _ = a.ValueForProtocol(ma.P_UDP)
		}
		if tcp == "0" || manet.IsIPUnspecified(a) {
			t.Fatalf("accepted %s address %q, which cannot be dialled", kind, s)
		}
	}
}

// checkLevel asserts that an accepted log level is one of the four
// documented, named in any case.
func checkLevel(t *testing.T, s string, l slog.Level) {
	t.Helper()
	switch l {
	case slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError:
	default:
		t.Fatalf("log level %q accepted as %v (%d)", s, l, int(l))
	}
	if !strings.EqualFold(s, l.String()) {
		t.Fatalf("log level %q accepted as %v", s, l)
	}
}

// FuzzConfigFile: a config file is accepted only if it is one JSON object
// of known keys, each at most once, whose values hold the documented
// bounds; the config then holds exactly the file's values (the defaults
// elsewhere), each with the file as its origin. A refused file gives a
// zero config and an error naming the file. The file is never touched.
func FuzzConfigFile(f *testing.F) {
	for _, s := range configSeeds(f) {
		f.Add([]byte(s))
	}
	def := defaultNodeConfig()
	// One directory for every input: a t.TempDir per input costs more than
	// the input itself. Each input overwrites the one file, and the
	// snapshot below fails the input that leaves anything else behind.
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "pastry.json")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		before := dirSnapshot(t, dir)
		c, err := loadNodeConfig([]string{"--config", path}, env{}.get, io.Discard)
		if after := dirSnapshot(t, dir); !reflect.DeepEqual(before, after) {
			t.Fatalf("loading the config changed %s", dir)
		}
		keys, vals, ferr := fileValues(data)
		if err != nil {
			if !reflect.DeepEqual(c, nodeConfig{}) {
				t.Fatalf("error %q with a partial config %+v", err, c)
			}
			msg := err.Error()
			switch {
			case strings.Contains(msg, path):
			case strings.HasPrefix(msg, "--conns-high (default): ") && strings.Contains(msg, "(conns_low)") && vals["conns_low"] != nil:
				// The default high watermark is below the file's conns_low.
			case strings.HasPrefix(msg, "--data-dir (default): ") && def.DataDir == "":
			default:
				t.Fatalf("error does not name the file %s: %q", path, msg)
			}
			if !utf8.ValidString(msg) {
				t.Fatalf("error is not UTF-8: %q", msg)
			}
			return
		}
		if ferr != nil {
			t.Fatalf("accepted a file that is not one JSON object: %v", ferr)
		}
		seen := map[string]bool{}
		for _, k := range keys {
			if _, ok := settings[k]; !ok || seen[k] {
				t.Fatalf("accepted key %q (known %v, repeated %v)", k, ok, seen[k])
			}
			seen[k] = true
		}
		checkConfigBounds(t, &c)
		// Each setting is the file's, or the default.
		got := map[string]any{
			"listen": c.Listen, "announce": c.Announce, "bootstrap": c.Bootstrap, "data_dir": c.DataDir, "api": c.API, "token": c.Token,
			"protocol_prefix": c.ProtocolPrefix, "log_level": c.LogLevel, "save_interval": c.SaveInterval,
			"conns_low": c.ConnsLow, "conns_high": c.ConnsHigh, "addr_policy": c.AddrPolicy, "pprof": c.Pprof,
			"ca_pub": c.CAPub, "cert": c.Cert, "network": c.Network,
			"store_capacity": c.StoreCapacity, "owner_quota": c.OwnerQuota, "route_cache": c.RouteCache,
		}
		dflt := map[string]any{
			"listen": def.Listen, "announce": def.Announce, "bootstrap": def.Bootstrap, "data_dir": def.DataDir, "api": def.API, "token": def.Token,
			"protocol_prefix": def.ProtocolPrefix, "log_level": def.LogLevel, "save_interval": def.SaveInterval,
			"conns_low": def.ConnsLow, "conns_high": def.ConnsHigh, "addr_policy": def.AddrPolicy, "pprof": def.Pprof,
			"ca_pub": def.CAPub, "cert": def.Cert, "network": def.Network,
			"store_capacity": def.StoreCapacity, "owner_quota": def.OwnerQuota, "route_cache": def.RouteCache,
		}
		for key := range settings {
			raw, inFile := vals[key]
			if !inFile || string(raw) == "null" {
				if c.origin[key] != "default" || !reflect.DeepEqual(got[key], dflt[key]) {
					t.Fatalf("%s not in the file: %v from %q, want the default %v", key, got[key], c.origin[key], dflt[key])
				}
				continue
			}
			if want := fmt.Sprintf("config file %s: key %q", path, key); c.origin[key] != want {
				t.Fatalf("origin of %s: %q, want %q", key, c.origin[key], want)
			}
			var want any
			switch key {
			case "listen", "announce", "bootstrap":
				var v []string
				err = json.Unmarshal(raw, &v)
				want = v
			case "conns_low", "conns_high":
				var v int
				err = json.Unmarshal(raw, &v)
				want = v
			case "store_capacity", "owner_quota", "route_cache":
				var v int64
				err = json.Unmarshal(raw, &v)
				want = v
			case "pprof":
				var v bool
				err = json.Unmarshal(raw, &v)
				want = v
			case "save_interval":
				var s string
				if err = json.Unmarshal(raw, &s); err == nil {
					want, err = time.ParseDuration(s)
				}
			default:
				var v string
				err = json.Unmarshal(raw, &v)
				want = v
			}
			if err != nil || !reflect.DeepEqual(got[key], want) {
				t.Fatalf("%s: config holds %#v, the file %s (%v)", key, got[key], raw, err)
			}
		}
	})
}

// FuzzConfigEnv: one PASTRY_* variable over the defaults. It is accepted
// only within the documented bounds, and then is the setting, with the
// variable as its origin; refused, it gives a zero config and an error
// naming the variable.
func FuzzConfigEnv(f *testing.F) {
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	idx := func(key string) uint8 { return uint8(slices.Index(keys, key)) }
	ps := fuzzPeers(f, 2)
	for _, s := range []struct{ key, val string }{
		{"listen", "/ip4/127.0.0.1/tcp/2001, /ip4/127.0.0.1/udp/2001/quic-v1"},
		{"listen", ",,"}, {"listen", "/ip4/1.2.3/tcp/1"}, {"listen", "/ip4/127.0.0.1/udp/1"},
		{"bootstrap", "/ip4/10.0.0.1/tcp/7701/p2p/" + ps[0].String() + ",/ip4/10.0.0.2/tcp/7701/p2p/" + ps[1].String()},
		{"bootstrap", "garbage"}, {"bootstrap", "/ip4/127.0.0.1/tcp/1"},
		{"data_dir", "/from/env"}, {"api", "127.0.0.1:2222"}, {"api", ":7700"}, {"api", "off"}, {"api", "127.0.0.1:http"},
		{"token", "env-token-0123456789"}, {"token", "short"}, {"protocol_prefix", "/env"}, {"protocol_prefix", "/a/"},
		{"log_level", "debug"}, {"log_level", "Error"}, {"log_level", "loud"}, {"log_level", "info+2"},
		{"save_interval", "7s"}, {"save_interval", "often"}, {"save_interval", "2h"},
		{"conns_low", "10"}, {"conns_low", "500"}, {"conns_low", "many"}, {"conns_high", "30"}, {"conns_high", "-1"},
		{"conns_high", "99999999999999999999"},
		{"addr_policy", "public"}, {"addr_policy", "PRIVATE"}, {"addr_policy", "lan"},
		{"pprof", "true"}, {"pprof", "0"}, {"pprof", "yes"},
		{"announce", "/ip4/203.0.113.7/tcp/7701,/dns4/n.example/udp/7701/quic-v1"}, {"announce", "/ip4/0.0.0.0/tcp/1"}, {"announce", "/ip4/1.2.3.4/tcp/0"},
		{"ca_pub", "/etc/pastry/ca.pub"}, {"cert", "node.cert"}, {"network", "mynet"},
		{"store_capacity", "1073741824"}, {"store_capacity", "-1"}, {"owner_quota", "10GiB"}, {"route_cache", "99999999999999999999"},
	} {
		f.Add(idx(s.key), s.val)
	}
	def := defaultNodeConfig()
	f.Fuzz(func(t *testing.T, which uint8, val string) {
		key := keys[int(which)%len(keys)]
		name := settings[key].env
		c, err := loadNodeConfig(nil, env{name: val}.get, io.Discard)
		if err != nil {
			if !reflect.DeepEqual(c, nodeConfig{}) {
				t.Fatalf("error %q with a partial config %+v", err, c)
			}
			msg := err.Error()
			switch {
			case strings.Contains(msg, name):
			case key == "conns_low" && strings.HasPrefix(msg, "--conns-high (default): ") && strings.Contains(msg, "(conns_low)"):
			case key != "data_dir" && strings.HasPrefix(msg, "--data-dir (default): ") && def.DataDir == "":
			default:
				t.Fatalf("error does not name %s: %q", name, msg)
			}
			return
		}
		checkConfigBounds(t, &c)
		if val == "" {
			if c.origin[key] != "default" {
				t.Fatalf("empty %s is not unset: origin %q", name, c.origin[key])
			}
			return
		}
		if c.origin[key] != name {
			t.Fatalf("origin of %s: %q, want %s", key, c.origin[key], name)
		}
		var got, want any
		switch key {
		case "listen":
			got, want = c.Listen, splitList(val)
		case "announce":
			got, want = c.Announce, splitList(val)
		case "bootstrap":
			got, want = c.Bootstrap, splitList(val)
		case "data_dir":
			got, want = c.DataDir, val
		case "api":
			got, want = c.API, val
		case "token":
			got, want = c.Token, val
		case "protocol_prefix":
			got, want = c.ProtocolPrefix, val
		case "log_level":
			got, want = c.LogLevel, val
		case "save_interval":
			d, _ := time.ParseDuration(val)
			got, want = c.SaveInterval, d
		case "conns_low":
			n, _ := strconv.Atoi(val)
			got, want = c.ConnsLow, n
		case "conns_high":
			n, _ := strconv.Atoi(val)
			got, want = c.ConnsHigh, n
		case "addr_policy":
			got, want = c.AddrPolicy, val
		case "pprof":
			b, _ := strconv.ParseBool(val)
			got, want = c.Pprof, b
		case "store_capacity", "owner_quota", "route_cache":
			n, _ := strconv.ParseInt(val, 10, 64)
			got, want = map[string]int64{"store_capacity": c.StoreCapacity, "owner_quota": c.OwnerQuota, "route_cache": c.RouteCache}[key], n
		case "ca_pub", "cert", "network": // accepted only together
			t.Fatalf("%s=%q accepted alone", name, val)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s=%q: config holds %#v", name, val, got)
		}
	})
}

// FuzzParseBootstrap: an accepted bootstrap address is a pastry peer with
// one address, and writing it back as a /p2p address reads back the same;
// a refused one gets an error quoting it.
func FuzzParseBootstrap(f *testing.F) {
	ps := fuzzPeers(f, 2)
	for _, s := range []string{
		"/ip4/127.0.0.1/tcp/1/p2p/" + testPeer, "/ip4/10.0.0.1/tcp/7701/p2p/" + ps[0].String(),
		"/ip6/::1/udp/7701/quic-v1/p2p/" + ps[1].String(), "/dns/node.example/tcp/443/p2p/" + ps[0].String(),
		"/ip4/10.0.0.1/tcp/1/p2p/" + ps[0].String() + "/p2p-circuit/p2p/" + ps[1].String(),
		"/ip4/127.0.0.1/tcp/1/p2p/" + foreignPeer(f).String(),
		"/ip4/127.0.0.1/tcp/1/p2p/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N",
		"/ip4/127.0.0.1/tcp/1", "/p2p/" + testPeer, "/ip4/1.2.3/tcp/1/p2p/" + testPeer, "garbage", "", "/",
		"/ip4/127.0.0.1/tcp/1/p2p/12D3KooW", "/p2p/" + testPeer + "/p2p/" + ps[0].String(),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ai, err := parseBootstrap(s)
		if err != nil {
			if ai.ID != "" || ai.Addrs != nil {
				t.Fatalf("error %q with a partial result %v", err, ai)
			}
			if !strings.Contains(err.Error(), strconv.Quote(s)) {
				t.Fatalf("error does not quote the address: %q", err)
			}
			return
		}
		checkPeerInfo(t, "bootstrap", ai)
		if len(ai.Addrs) != 1 {
			t.Fatalf("%q gave %d addresses", s, len(ai.Addrs))
		}
		p2p, err := peer.AddrInfoToP2pAddrs(&ai)
		if err != nil || len(p2p) != 1 {
			t.Fatalf("accepted %q does not write back: %v", s, err)
		}
		back, err := parseBootstrap(p2p[0].String())
		if err != nil || !sameAddrInfos([]peer.AddrInfo{back}, []peer.AddrInfo{ai}) {
			t.Fatalf("%q written back as %s reads %v, %v", s, p2p[0], back, err)
		}
	})
}

// FuzzParseLogLevel: only the four documented levels, in any case.
func FuzzParseLogLevel(f *testing.F) {
	for _, s := range []string{"debug", "info", "warn", "error", "DEBUG", "Warn", "", "loud", "warning",
		"info+2", "debug-4", "error+9223372036854775807", "info-9223372036854775808", "info+", "ERROR+1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := parseLogLevel(s)
		if err != nil {
			if l != 0 || !strings.Contains(err.Error(), strconv.Quote(s)) || !strings.Contains(err.Error(), "debug, info, warn or error") {
				t.Fatalf("level %v, error %q", l, err)
			}
			return
		}
		checkLevel(t, s, l)
		if l2, err := parseLogLevel(l.String()); err != nil || l2 != l {
			t.Fatalf("%v does not round-trip: %v, %v", l, l2, err)
		}
	})
}

// FuzzParseKey: an accepted key (CLI argument or the API's ?key=) is 32
// hex digits and prints back as them in lower case; a refused one gets a
// bounded, printable error saying what is wanted.
func FuzzParseKey(f *testing.F) {
	for _, s := range []string{"00112233445566778899aabbccddeeff", "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", strings.Repeat("0", 32),
		"", "0x1122", "g0112233445566778899aabbccddeeff", "00112233445566778899aabbccddeef", strings.Repeat("a", 300),
		strings.Repeat("é", 200), "00112233445566778899aabbccddeeff\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := parseKey(s)
		if err != nil {
			msg := err.Error()
			if k != (id.ID{}) || !strings.HasPrefix(msg, "bad key ") || !strings.Contains(msg, "want 32 hexadecimal digits") {
				t.Fatalf("key %v, error %q", k, msg)
			}
			if len(msg) > 4*256+100 || !utf8.ValidString(msg) {
				t.Fatalf("error of %d bytes (valid UTF-8 %v) for %d bytes of input", len(msg), utf8.ValidString(msg), len(s))
			}
			return
		}
		if len(s) != 32 || k.String() != strings.ToLower(s) {
			t.Fatalf("parseKey(%q) = %s", s, k)
		}
		if k2, err := parseKey(k.String()); err != nil || k2 != k {
			t.Fatalf("round trip: %v, %v", k2, err)
		}
	})
}

// --- peers file ------------------------------------------------------

// peersSeeds are peers files: ones savePeers wrote and damaged ones (those
// of peers_test.go among them).
func peersSeeds(tb testing.TB) []string {
	ps := fuzzPeers(tb, 3)
	good := func(p peer.ID, addrs ...string) peer.AddrInfo {
		ai := peer.AddrInfo{ID: p}
		for _, a := range addrs {
			ai.Addrs = append(ai.Addrs, ma.StringCast(a))
		}
		return ai
	}
	dir := tb.TempDir()
	var out []string
	for _, list := range [][]peer.AddrInfo{
		{good(ps[0], "/ip4/10.0.0.1/tcp/7701", "/ip4/10.0.0.1/udp/7701/quic-v1"), good(ps[1], "/ip6/::1/tcp/7701")},
		{good(ps[2], "/dns/node.example/tcp/443")},
		nil,
	} {
		if err := savePeers(dir, "00112233445566778899aabbccddeeff", list, time.Unix(1e9, 0)); err != nil {
			tb.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, peersFileName))
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, string(b))
	}
	// More peers than are loaded, and more addresses for one.
	var many []peer.AddrInfo
	for _, p := range fuzzPeers(tb, maxSavedPeers+3) {
		many = append(many, good(p, "/ip4/10.0.0.2/tcp/1"))
	}
	many[1].Addrs = nil
	for i := range maxAddrsPerPeer + 3 {
		many[1].Addrs = append(many[1].Addrs, ma.StringCast(fmt.Sprintf("/ip4/10.0.1.%d/tcp/1", i)))
	}
	if err := savePeers(dir, "", many, time.Unix(1e9, 0)); err != nil {
		tb.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, peersFileName))
	if err != nil {
		tb.Fatal(err)
	}
	out = append(out, string(b))
	p0 := "/ip4/10.0.0.1/tcp/7701/p2p/" + ps[0].String()
	return append(out,
		`{"version": 1, "peers": [`, "\x00\x01", `{"version": 2, "peers": []}`, `{"version": 1}`, `{"peers": []}`,
		`{"version": 1, "peers": ["garbage", "/ip4/10.0.0.1/tcp/1", "`+p0+`"]}`,
		// Loaded before as they are, since: an address repeated kept once,
		// a peer ID no pastry node has and an address naming two peers
		// skipped as bad (and, above, addresses beyond maxAddrsPerPeer).
		`{"version": 1, "peers": ["`+p0+`", "`+p0+`", "/ip4/10.0.0.2/tcp/1/p2p/`+ps[0].String()+`"]}`,
		`{"version": 1, "peers": ["/p2p/`+ps[0].String()+`", "/ip4/1.2.3.4/tcp/1/p2p/`+foreignPeer(tb).String()+`"]}`,
		`{"version": 1, "peers": ["/p2p/`+ps[1].String()+`/p2p/`+ps[0].String()+`"]}`,
		`{"version": 1, "peers": ["/ip4/10.0.0.1/tcp/1/p2p/`+ps[0].String()+`/p2p-circuit/p2p/`+ps[1].String()+`"]}`,
		`{"version": 1, "saved": "yesterday", "peers": []}`, `{"version": 1, "peers": [1]}`, `null`, ``,
		`{"version": 1, "peers": ["`+p0+`"]} trailing`,
	)
}

// FuzzPeersFile: loading the peers file never writes to the data dir. A
// file that does not load gives no peers at all and an error naming it.
// The peers loaded are pastry peers, each once, with 1 to maxAddrsPerPeer
// distinct addresses, at most maxSavedPeers of them, all from the file's
// entries; saving them and loading again gives the same list.
func FuzzPeersFile(f *testing.F) {
	for _, s := range peersSeeds(f) {
		f.Add([]byte(s))
	}
	dir, dir2 := f.TempDir(), f.TempDir() // shared by every input, as in FuzzConfigFile
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, peersFileName)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		before := dirSnapshot(t, dir)
		peers, bad, err := loadPeers(dir)
		if after := dirSnapshot(t, dir); !reflect.DeepEqual(before, after) {
			t.Fatalf("loading the peers changed %s", dir)
		}
		if err != nil {
			if peers != nil || bad != 0 {
				t.Fatalf("error %q with %d peers, %d bad", err, len(peers), bad)
			}
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error does not name the file: %q", err)
			}
			return
		}
		var pf peersFile
		if err := json.Unmarshal(data, &pf); err != nil || pf.Version != peersFileVersion {
			t.Fatalf("loaded a file that is not a peers file: %v, version %d", err, pf.Version)
		}
		if bad < 0 || bad > len(pf.Peers) || len(peers) > maxSavedPeers {
			t.Fatalf("%d peers, %d bad, from %d entries", len(peers), bad, len(pf.Peers))
		}
		entries := map[string]bool{}
		for _, s := range pf.Peers {
			if a, err := ma.NewMultiaddr(s); err == nil {
				entries[string(a.Bytes())] = true
			}
		}
		ids := map[peer.ID]bool{}
		for _, ai := range peers {
			checkPeerInfo(t, "saved peer", ai)
			if ids[ai.ID] {
				t.Fatalf("peer %s loaded twice", ai.ID)
			}
			ids[ai.ID] = true
			if len(ai.Addrs) > maxAddrsPerPeer {
				t.Fatalf("peer %s loaded with %d addresses", ai.ID, len(ai.Addrs))
			}
			seen := map[string]bool{}
			for _, a := range ai.Addrs {
				if seen[string(a.Bytes())] {
					t.Fatalf("peer %s: address %s loaded twice", ai.ID, a)
				}
				seen[string(a.Bytes())] = true
				full := a.Encapsulate(ma.StringCast("/p2p/" + ai.ID.String()))
				if !entries[string(full.Bytes())] {
					t.Fatalf("loaded %s, not an entry of the file", full)
				}
			}
		}
		if len(peers) == 0 {
			return // nothing to save (and savePeers syncs: slow)
		}
		// Saved and loaded again: the same peers.
		if err := savePeers(dir2, pf.NodeID, peers, time.Unix(1e9, 0)); err != nil {
			t.Fatal(err)
		}
		again, bad2, err := loadPeers(dir2)
		if err != nil || bad2 != 0 || !sameAddrInfos(again, peers) {
			t.Fatalf("saved and loaded again: %v (%d bad, %v), loaded first %v", again, bad2, err, peers)
		}
	})
}

// --- the CLI client --------------------------------------------------

// cannedAPI answers every request with one status and body.
type cannedAPI struct {
	mu     sync.Mutex
	status int
	body   []byte
}

func (c *cannedAPI) set(status int, body []byte) {
	c.mu.Lock()
	c.status, c.body = status, body
	c.mu.Unlock()
}

func (c *cannedAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	status, body := c.status, c.body
	c.mu.Unlock()
	w.WriteHeader(status)
	w.Write(body)
}

// clientSeeds are answers of the API: real documents and broken ones.
func clientSeeds(tb testing.TB) [][]byte {
	ps := fuzzPeers(tb, 3)
	h := func(i int) handleJSON {
		nid, err := secure.NodeIDFromPeer(ps[i])
		if err != nil {
			tb.Fatal(err)
		}
		return handleJSON{NodeID: nid.String(), PeerID: ps[i].String()}
	}
	ls := leafSetJSON{Left: []handleJSON{h(1)}, Right: []handleJSON{h(2)}}
	docs := []any{
		statusJSON{NodeID: h(0).NodeID, PeerID: h(0).PeerID, Addrs: []string{"/ip4/127.0.0.1/tcp/7701"}, Protocol: "/pastry/1.0.0",
			Status: "joined", LeafSet: ls, RoutingTableEntries: 5, NeighborhoodSize: 2, NetworkSizeEstimate: 3, UptimeS: 12.5},
		tableJSON{NodeID: h(0).NodeID, B: 4, Rows: []rowJSON{{Row: 0, Entries: []entryJSON{{Column: "a", NodeID: h(1).NodeID, PeerID: h(1).PeerID}}}, {Row: 1, Entries: []entryJSON{}}},
			LeafSet: ls, NeighborhoodSet: []handleJSON{h(2)}},
		routeJSON{Key: h(1).NodeID, Root: h(1).NodeID, Hops: 1, Path: []string{h(0).NodeID, h(1).NodeID}, LatencyMS: 0.25},
		errorJSON{Error: "the node is joining, not joined: it cannot route yet"},
	}
	var out [][]byte
	for _, d := range docs {
		b, err := json.MarshalIndent(d, "", "  ")
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, append(b, '\n'))
	}
	return append(out, []byte("<html>not json</html>"), []byte{}, []byte("null"), []byte(`{"node_id": 5}`),
		[]byte(`{"uptime_s": 1e300, "network_size_estimate": -1e308}`), []byte(`{"rows": [{"row": -1, "entries": [{"column": ""}]}]}`),
		[]byte(`{"path": null, "hops": -9}`), []byte(`{"error": ""}`), []byte("  \n"), []byte(`{} {}`), []byte(`[]`))
}

// FuzzClientResponse: the CLI client given any answer of the API. A 200
// whose body is the command's JSON document succeeds and prints it (with
// --json, exactly the body); anything else fails with exit code 1,
// nothing on stdout and an error saying what went wrong: the API's status
// and message, a refused token, or that the answer is not the API's JSON.
func FuzzClientResponse(f *testing.F) {
	seeds := clientSeeds(f)
	statuses := []int{200, 400, 401, 404, 429, 500, 503, 504}
	for i, b := range seeds {
		for cmd := range 4 {
			f.Add(uint8(cmd), uint16(200), b, i%2 == 0)
		}
		f.Add(uint8(i), uint16(statuses[i%len(statuses)]), b, false)
	}
	api := &cannedAPI{}
	srv := httptest.NewServer(api)
	f.Cleanup(srv.Close)
	key := strings.Repeat("ab", id.Len)
	f.Fuzz(func(t *testing.T, cmd uint8, status uint16, body []byte, raw bool) {
		code := int(status)
		if code < 200 || code > 599 {
			code = statuses[int(status)%len(statuses)]
		}
		api.set(code, body)
		name := []string{"status", "table", "route", "id"}[cmd%4]
		args := []string{name, "--api", srv.URL, "--token", "fuzz-token-0123456789"}
		if raw {
			args = append(args, "--json")
		}
		var doc any
		switch name {
		case "status", "id":
			doc = &statusJSON{}
		case "table":
			doc = &tableJSON{}
		case "route":
			doc = &routeJSON{}
			args = append(args, key)
		}
		var stdout, stderr bytes.Buffer
		exit := run(args, &stdout, &stderr)
		out, msg := stdout.String(), stderr.String()
		decErr := json.Unmarshal(body, doc)
		if code == http.StatusOK && decErr == nil {
			if exit != 0 || msg != "" {
				t.Fatalf("%s on a good answer: exit %d, %q", name, exit, msg)
			}
			switch {
			case raw && name != "id":
				if want := string(bytes.TrimRight(body, "\n")) + "\n"; out != want {
					t.Fatalf("%s --json printed %q, the API sent %q", name, out, body)
				}
			case raw:
				var h handleJSON
				st := doc.(*statusJSON)
				if err := json.Unmarshal([]byte(out), &h); err != nil || h != (handleJSON{st.NodeID, st.PeerID}) {
					t.Fatalf("id --json printed %q (%v)", out, err)
				}
			default:
				if !strings.HasSuffix(out, "\n") {
					t.Fatalf("%s printed %q", name, out)
				}
			}
			return
		}
		if exit != 1 || out != "" || !strings.HasPrefix(msg, "pastry "+name+": ") || !strings.HasSuffix(msg, "\n") {
			t.Fatalf("%s on %d %q: exit %d, stdout %q, stderr %q", name, code, body, exit, out, msg)
		}
		switch {
		case code == http.StatusOK:
			if !strings.Contains(msg, "the API at "+srv.URL+" sent something that is not its JSON") {
				t.Fatalf("undecodable answer: %q", msg)
			}
		case code == http.StatusUnauthorized:
			if !strings.Contains(msg, "the API at "+srv.URL+" refused the token") {
				t.Fatalf("401: %q", msg)
			}
		default:
			prefix := fmt.Sprintf("pastry %s: the API answered %d: ", name, code)
			if !strings.HasPrefix(msg, prefix) || strings.TrimSpace(strings.TrimPrefix(msg, prefix)) == "" {
				t.Fatalf("%d: error %q does not say what the API answered", code, msg)
			}
		}
	})
}
