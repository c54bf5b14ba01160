package main

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pastrynet/pastry/secure"
)

func runCmd(args ...string) (int, string, string) {
	var o, e bytes.Buffer
	c := run(args, &o, &e)
	return c, o.String(), e.String()
}

// TestClientNoDaemon: with nothing listening, every client command says
// so and suggests starting a node.
func TestClientNoDaemon(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	for _, args := range [][]string{
		{"status", "--api", addr}, {"table", "--api", addr}, {"id", "--api", addr},
		{"route", "--api", addr, strings.Repeat("0", 32)},
	} {
		code, _, se := runCmd(args...)
		if code != 1 || !strings.Contains(se, "cannot reach the API at http://"+addr) || !strings.Contains(se, "is `pastry node` or `pastry devnet` running?") {
			t.Errorf("%v: %d %q", args, code, se)
		}
	}
	t.Setenv("PASTRY_API", addr)
	if code, _, se := runCmd("status"); code != 1 || !strings.Contains(se, addr) {
		t.Errorf("status with PASTRY_API: %d %q", code, se)
	}
}

// TestClientErrors: the token, API errors and bad flags.
func TestClientErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !authorized(r, "right-token-0123456789") {
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		switch r.URL.Path {
		case "/v1/route":
			writeError(w, http.StatusServiceUnavailable, "the node is joining, not joined: it cannot route yet")
		case "/v1/status":
			w.Write([]byte("<html>not json</html>"))
		}
	}))
	defer srv.Close()
	code, _, se := runCmd("status", "--api", srv.URL)
	if code != 1 || !strings.Contains(se, "refused the token") || !strings.Contains(se, "PASTRY_TOKEN") {
		t.Errorf("no token: %d %q", code, se)
	}
	t.Setenv("PASTRY_TOKEN", "right-token-0123456789")
	code, _, se = runCmd("route", "--api", srv.URL, strings.Repeat("a", 32))
	if code != 1 || !strings.Contains(se, "the API answered 503: the node is joining") {
		t.Errorf("route while joining: %d %q", code, se)
	}
	code, _, se = runCmd("status", "--api", srv.URL)
	if code != 1 || !strings.Contains(se, "not its JSON") {
		t.Errorf("not JSON: %d %q", code, se)
	}
	code, _, se = runCmd("status", "--api", "ftp://x")
	if code != 1 || !strings.Contains(se, "--api") {
		t.Errorf("bad --api: %d %q", code, se)
	}
	code, _, se = runCmd("status", "extra")
	if code != 2 || !strings.Contains(se, "unexpected argument") {
		t.Errorf("extra argument: %d %q", code, se)
	}
	for _, cmd := range []string{"status", "table", "route", "id", "node", "devnet", "keygen"} {
		code, _, se = runCmd(cmd, "-h")
		if code != 0 || !strings.Contains(se, "usage: pastry "+cmd) {
			t.Errorf("%s -h: %d %q", cmd, code, se)
		}
	}
	// A slow API: --timeout applies.
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()
	code, _, se = runCmd("id", "--api", slow.URL, "--timeout", "100ms")
	if code != 1 || !strings.Contains(se, "did not answer in time") {
		t.Errorf("slow API: %d %q", code, se)
	}
}

func TestKeygen(t *testing.T) {
	// Dry run: prints an identity, writes nothing.
	code, so, _ := runCmd("keygen")
	if code != 0 || !regexp.MustCompile(`^peer id  12D3Koo\w+\nnode id  [0-9a-f]{32}\nnot saved`).MatchString(so) {
		t.Fatalf("keygen: %d %q", code, so)
	}
	path := filepath.Join(t.TempDir(), "dir", "key")
	code, so, se := runCmd("keygen", "--out", path)
	if code != 0 {
		t.Fatalf("keygen --out: %d %s", code, se)
	}
	m := regexp.MustCompile(`^peer id  (12D3Koo\w+)\nnode id  ([0-9a-f]{32})\nkey      `).FindStringSubmatch(so)
	if m == nil {
		t.Fatalf("output %q", so)
	}
	// The file is a key the node will load, with the printed identity.
	k, created, err := secure.LoadOrCreateKey(path)
	if err != nil || created {
		t.Fatalf("load: %v created=%v", err, created)
	}
	p, _ := peer.IDFromPrivateKey(k)
	nid, _ := secure.NodeIDFromPeer(p)
	if p.String() != m[1] || nid.String() != m[2] {
		t.Fatalf("printed %s %s, file holds %s %s", m[1], m[2], p, nid)
	}
	before, _ := os.ReadFile(path)
	code, _, se = runCmd("keygen", "--out", path)
	after, _ := os.ReadFile(path)
	if code != 1 || !strings.Contains(se, "refusing to overwrite") || !bytes.Equal(before, after) {
		t.Fatalf("overwrite: %d %q", code, se)
	}
}

func TestUnknownCommand(t *testing.T) {
	if code, _, se := runCmd("frobnicate"); code != 2 || !strings.Contains(se, `unknown command "frobnicate"`) {
		t.Fatalf("%d %q", code, se)
	}
	if code, _, se := runCmd(); code != 2 || !strings.Contains(se, "devnet") || !strings.Contains(se, "keygen") {
		t.Fatalf("%d %q", code, se)
	}
}
