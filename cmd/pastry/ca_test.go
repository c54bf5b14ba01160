package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pastrynet/pastry/secure"
	"github.com/pastrynet/pastry/transport"
)

// caSetup is an authority made by `pastry ca init` and a node data
// directory with its key.
type caSetup struct {
	dir, caKey, caPub, dataDir, nodeKey string
	peer                                peer.ID
}

func newCASetup(t *testing.T) caSetup {
	t.Helper()
	dir := t.TempDir()
	s := caSetup{dir: dir, caKey: filepath.Join(dir, "ca", caKeyFile), caPub: filepath.Join(dir, "ca", caPubFile), dataDir: filepath.Join(dir, "node")}
	code, out, errOut := runCmd("ca", "init", "--out", filepath.Join(dir, "ca"))
	if code != 0 || !strings.Contains(out, s.caKey) || !strings.Contains(out, s.caPub) {
		t.Fatalf("ca init: exit %d\n%s%s", code, out, errOut)
	}
	for _, p := range []string{s.caKey, s.caPub} {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, %v", p, st, err)
		}
	}
	s.nodeKey = filepath.Join(s.dataDir, "key")
	priv, _, err := secure.LoadOrCreateKey(s.nodeKey)
	if err != nil {
		t.Fatal(err)
	}
	s.peer, _ = peer.IDFromPrivateKey(priv)
	return s
}

var certifiedID = regexp.MustCompile(`certified node id  ([0-9a-f]{32})\n`)

// issue runs `pastry ca issue` and returns the certificate's path and the
// node id it printed.
func (s caSetup) issue(t *testing.T, name string, args ...string) (string, string) {
	t.Helper()
	out := filepath.Join(s.dir, name)
	code, stdout, stderr := runCmd(append([]string{"ca", "issue", "--ca-key", s.caKey, "--out", out}, args...)...)
	m := certifiedID.FindStringSubmatch(stdout)
	if code != 0 || m == nil {
		t.Fatalf("ca issue %v: exit %d\n%s%s", args, code, stdout, stderr)
	}
	return out, m[1]
}

func TestCAIssueAndNodeCheck(t *testing.T) {
	s := newCASetup(t)
	byKey, idByKey := s.issue(t, "by-key.cert", "--network", "mynet", "--node-key", s.nodeKey)
	byPub, idByPub := s.issue(t, "by-pub.cert", "--network", "mynet", "--node-pub", s.peer.String(), "--validity", "1h")
	if idByKey == idByPub {
		t.Fatal("two certificates of one key gave the same id: the nonce is not the authority's")
	}
	ca, err := secure.LoadAuthorityPub(s.caPub)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{byKey: idByKey, byPub: idByPub} {
		c, err := secure.LoadCertificate(path)
		if err != nil {
			t.Fatal(err)
		}
		if c.NodeID().String() != want {
			t.Fatalf("%s: printed id %s, certificate's %s", path, want, c.NodeID())
		}
		if err := c.VerifyPeer(ca, "mynet", s.peer, time.Now()); err != nil {
			t.Fatal(err)
		}
		if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: mode %04o", path, st.Mode().Perm())
		}
	}
	if c, _ := secure.LoadCertificate(byPub); c.NotAfter-c.NotBefore != int64((time.Hour+secure.IssueBackdate)/time.Second) {
		t.Fatalf("--validity 1h: %d s", c.NotAfter-c.NotBefore)
	}

	// The node starts with it and logs the certified id.
	cfg, err := loadNodeConfig([]string{"--data-dir", s.dataDir, "--listen", "/ip4/127.0.0.1/tcp/0", "--api", "off",
		"--ca-pub", s.caPub, "--cert", byKey, "--network", "mynet"}, env{}.get, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	d, err := startDaemon(cfg, newLogger(&logs, 0))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.close(t.Context()); err != nil {
		t.Error(err)
	}
	if !strings.Contains(logs.String(), "certified_node_id="+idByKey) || !strings.Contains(logs.String(), "not enforced (no --secure)") {
		t.Fatalf("log:\n%s", logs.String())
	}
	// With --secure the node's id is the certified one.
	cfg.Secure = true
	logs.Reset()
	d, err = startDaemon(cfg, newLogger(&logs, 0))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.close(t.Context()); err != nil {
		t.Error(err)
	}
	if d.node.ID().String() != idByKey || !strings.Contains(logs.String(), "msg=identity node_id="+idByKey) {
		t.Fatalf("--secure: node id %s, want %s; log:\n%s", d.node.ID(), idByKey, logs.String())
	}
}

func TestCAInitRefusesToOverwrite(t *testing.T) {
	s := newCASetup(t)
	before, _ := os.ReadFile(s.caKey)
	code, _, errOut := runCmd("ca", "init", "--out", filepath.Dir(s.caKey))
	if code != 1 || !strings.Contains(errOut, "refusing to overwrite") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if after, _ := os.ReadFile(s.caKey); !bytes.Equal(before, after) {
		t.Fatal("the authority key was replaced")
	}
	if code, _, _ := runCmd("ca", "init"); code != 2 {
		t.Fatalf("no --out: exit %d", code)
	}
	if code, _, _ := runCmd("ca"); code != 2 {
		t.Fatalf("no subcommand: exit %d", code)
	}
	if code, _, _ := runCmd("ca", "revoke"); code != 2 {
		t.Fatalf("unknown subcommand: exit %d", code)
	}
	if code, _, _ := runCmd("ca", "-h"); code != 0 {
		t.Fatalf("ca -h: exit %d", code)
	}
}

func TestCAIssueRefuses(t *testing.T) {
	s := newCASetup(t)
	existing, _ := s.issue(t, "node.cert", "--network", "mynet", "--node-key", s.nodeKey)
	out := filepath.Join(s.dir, "new.cert")
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no network", []string{"--ca-key", s.caKey, "--node-key", s.nodeKey, "--out", out}, 2, "--network NAME is required"},
		{"bad network", []string{"--ca-key", s.caKey, "--network", "my net", "--node-key", s.nodeKey, "--out", out}, 2, "printable ASCII"},
		{"both keys", []string{"--ca-key", s.caKey, "--network", "n", "--node-key", s.nodeKey, "--node-pub", s.peer.String(), "--out", out}, 2, "exactly one"},
		{"no key", []string{"--ca-key", s.caKey, "--network", "n", "--out", out}, 2, "exactly one"},
		{"validity", []string{"--ca-key", s.caKey, "--network", "n", "--node-key", s.nodeKey, "--out", out, "--validity", "-1h"}, 2, "--validity"},
		{"bad peer ID", []string{"--ca-key", s.caKey, "--network", "n", "--node-pub", "12D3KooWnope", "--out", out}, 1, "not a pastry node's peer ID"},
		{"missing CA key", []string{"--ca-key", filepath.Join(s.dir, "nope"), "--network", "n", "--node-key", s.nodeKey, "--out", out}, 1, "no such file"},
		{"public key as CA key", []string{"--ca-key", s.caPub, "--network", "n", "--node-key", s.nodeKey, "--out", out}, 1, `want a "PASTRY CA PRIVATE KEY"`},
		{"certificate as node key", []string{"--ca-key", s.caKey, "--network", "n", "--node-key", existing, "--out", out}, 1, "--node-key"},
		{"out exists", []string{"--ca-key", s.caKey, "--network", "n", "--node-key", s.nodeKey, "--out", existing}, 1, "refusing to overwrite"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, errOut := runCmd(append([]string{"ca", "issue"}, c.args...)...)
			if code != c.code || !strings.Contains(errOut, c.want) {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, c.code, errOut)
			}
			if _, err := os.Stat(out); err == nil {
				t.Fatal("a certificate was written")
			}
		})
	}
	if st, _ := os.Stat(s.caKey); st.Mode().Perm() != 0o600 {
		t.Fatal("key mode changed")
	}
	os.Chmod(s.caKey, 0o644)
	if code, _, errOut := runCmd("ca", "issue", "--ca-key", s.caKey, "--network", "n", "--node-key", s.nodeKey, "--out", out); code != 1 || !strings.Contains(errOut, "chmod 600") {
		t.Fatalf("readable CA key: exit %d: %s", code, errOut)
	}
}

// TestNodeRefusesBadCertificates: `pastry node` exits 1 before listening,
// with a message naming the setting and the reason.
func TestNodeRefusesBadCertificates(t *testing.T) {
	s := newCASetup(t)
	good, _ := s.issue(t, "node.cert", "--network", "mynet", "--node-key", s.nodeKey)
	otherCA := t.TempDir()
	if code, _, e := runCmd("ca", "init", "--out", otherCA); code != 0 {
		t.Fatal(e)
	}
	// A stranger's certificate, and an expired one (issued through the
	// package: the CLI cannot backdate).
	strangerKey := filepath.Join(s.dir, "stranger.key")
	if _, _, err := secure.LoadOrCreateKey(strangerKey); err != nil {
		t.Fatal(err)
	}
	stranger, _ := s.issue(t, "stranger.cert", "--network", "mynet", "--node-key", strangerKey)
	a, err := secure.LoadAuthorityKey(s.caKey)
	if err != nil {
		t.Fatal(err)
	}
	priv, _ := secure.LoadKey(s.nodeKey)
	old, err := a.Issue(priv.GetPublic(), "mynet", time.Now().Add(-48*time.Hour), 24*time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	expired := filepath.Join(s.dir, "expired.cert")
	data, _ := secure.MarshalCertificateFile(old)
	if err := secure.CreateFile(expired, data); err != nil {
		t.Fatal(err)
	}
	garbled := filepath.Join(s.dir, "garbled.cert")
	if err := os.WriteFile(garbled, []byte("-----BEGIN PASTRY NODE CERTIFICATE-----\nAAAA\n-----END PASTRY NODE CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, caPub, cert, network string
		want                       []string
	}{
		{"wrong authority", filepath.Join(otherCA, caPubFile), good, "mynet", []string{"--cert", "not signed by the authority", "--ca-pub"}},
		{"foreign network", s.caPub, good, "othernet", []string{"certificate of another network", `issued for "mynet"`}},
		{"another node's", s.caPub, stranger, "mynet", []string{"certificate of another key", s.peer.String()}},
		{"expired", s.caPub, expired, "mynet", []string{"certificate expired", "pastry ca issue"}},
		{"malformed", s.caPub, garbled, "mynet", []string{"--cert", "malformed certificate"}},
		{"missing", s.caPub, filepath.Join(s.dir, "none.cert"), "mynet", []string{"--cert", "no such file"}},
		{"key as authority", s.caKey, good, "mynet", []string{"--ca-pub", `want a "PASTRY CA PUBLIC KEY"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, errOut := runCmd("node", "--data-dir", s.dataDir, "--listen", "/ip4/127.0.0.1/tcp/0", "--api", "off",
				"--ca-pub", c.caPub, "--cert", c.cert, "--network", c.network)
			if code != 1 {
				t.Fatalf("exit %d, want 1; stderr:\n%s", code, errOut)
			}
			for _, w := range append(c.want, "pastry node: ") {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr does not say %q:\n%s", w, errOut)
				}
			}
		})
	}
}

func TestNodeCertificateSettingsGoTogether(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"--cert", "c"}, {"--ca-pub", "p"}, {"--network", "n"}, {"--cert", "c", "--network", "n"},
	} {
		_, err := loadNodeConfig(append([]string{"--data-dir", dir}, args...), env{}.get, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "go together") {
			t.Errorf("%v: %v", args, err)
		}
	}
	_, err := loadNodeConfig([]string{"--data-dir", dir, "--cert", "c", "--ca-pub", "p", "--network", "a b"}, env{}.get, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--network") {
		t.Errorf("bad network name: %v", err)
	}
	c, err := loadNodeConfig([]string{"--data-dir", dir}, env{"PASTRY_CERT": "c", "PASTRY_CA_PUB": "p", "PASTRY_NETWORK": "n"}.get, io.Discard)
	if err != nil || c.Cert != "c" || c.CAPub != "p" || c.Network != "n" || c.from("cert") != "PASTRY_CERT" {
		t.Errorf("from the environment: %+v, %v", c, err)
	}
}

// TestNodePuzzleBits: `pastry node --puzzle-bits 4` makes a new key that
// solves the puzzle, starts with it again, refuses a key that does not
// solve it (left untouched), and refuses to go with --secure.
func TestNodePuzzleBits(t *testing.T) {
	dir := t.TempDir()
	start := func(dataDir string, extra ...string) (*daemon, error) {
		t.Helper()
		cfg, err := loadNodeConfig(append([]string{"--data-dir", dataDir, "--listen", "/ip4/127.0.0.1/tcp/0", "--api", "off"}, extra...), env{}.get, io.Discard)
		if err != nil {
			return nil, err
		}
		return startDaemon(cfg, newLogger(io.Discard, 0))
	}
	fresh := filepath.Join(dir, "fresh")
	for range 2 { // made, then loaded
		d, err := start(fresh, "--puzzle-bits", "4")
		if err != nil {
			t.Fatal(err)
		}
		p := peer.ID(d.node.Self().Addr)
		d.close(t.Context())
		if bits := transport.PuzzleBitsOf(p); bits < 4 {
			t.Fatalf("key of %d puzzle bits, want at least 4", bits)
		}
	}
	// A key that does not solve it: refused, not replaced.
	other := filepath.Join(dir, "other")
	var before []byte
	for {
		d, err := start(other)
		if err != nil {
			t.Fatal(err)
		}
		p := peer.ID(d.node.Self().Addr)
		d.close(t.Context())
		if transport.PuzzleBitsOf(p) < 4 {
			before, _ = os.ReadFile(filepath.Join(other, "key"))
			break
		}
		os.RemoveAll(other)
	}
	if _, err := start(other, "--puzzle-bits", "4"); err == nil || !strings.Contains(err.Error(), "move it aside") {
		t.Fatalf("a key that does not solve the puzzle: %v", err)
	}
	if after, _ := os.ReadFile(filepath.Join(other, "key")); !bytes.Equal(before, after) {
		t.Fatal("the key file changed")
	}
	if _, err := loadNodeConfig([]string{"--puzzle-bits", "33"}, env{}.get, io.Discard); err == nil {
		t.Error("--puzzle-bits 33 accepted")
	}
	s := newCASetup(t)
	cert, _ := s.issue(t, "n.cert", "--network", "mynet", "--node-key", s.nodeKey)
	if _, err := loadNodeConfig([]string{"--puzzle-bits", "4", "--secure", "--ca-pub", s.caPub, "--cert", cert, "--network", "mynet"}, env{}.get, io.Discard); err == nil {
		t.Error("--puzzle-bits with --secure accepted")
	}
}
