package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Records through the API and the CLI against real nodes: put, get from
// another node (by the owner's peer ID), a new version, an immutable
// object by its key, delete; bad requests get clear errors.
func TestAPIRecords(t *testing.T) {
	dn := startTestNet(t, 6)
	a, b := dn.nodes[0].api.Addr(), dn.nodes[3].api.Addr()
	owner := dn.nodes[0].host.ID().String()
	code, body := apiDo(t, http.MethodPut, a, "/v1/records/note", "", []byte("first"))
	if code != 200 || !strings.Contains(string(body), `"version": 1`) {
		t.Fatalf("put: %d %s", code, body)
	}
	if code, so, se := runCmd("get", "--api", b, "--owner", owner, "note"); code != 0 || so != "first" {
		t.Fatalf("get from another node: %d %q %q", code, so, se)
	}
	code, body = apiDo(t, http.MethodPut, a, "/v1/records/note", "", []byte("second"))
	if code != 200 || !strings.Contains(string(body), `"version": 2`) {
		t.Fatalf("second put: %d %s", code, body)
	}
	if code, so, se := runCmd("get", "--api", a, "note"); code != 0 || so != "second" {
		t.Fatalf("get the new version: %d %q %q", code, so, se)
	}
	code, so, se := runCmd("put", "--api", b, "--immutable", "records_test.go")
	key := strings.TrimSpace(so)
	if code != 0 || len(key) != 32 {
		t.Fatalf("put --immutable: %d %q %q", code, so, se)
	}
	if code, so, _ := runCmd("get", "--api", a, key); code != 0 || !strings.Contains(so, "TestAPIRecords") {
		t.Fatalf("get the object by its key: %d %.80q", code, so)
	}
	if code, so, se := runCmd("rm", "--api", a, "note"); code != 0 || !strings.Contains(so, "deleted note (version 3") {
		t.Fatalf("rm: %d %q %q", code, so, se)
	}
	if code, _, se := runCmd("get", "--api", b, "--owner", owner, "note"); code != 1 || !strings.Contains(se, "was deleted (version 3)") {
		t.Fatalf("get after rm: %d %q", code, se)
	}
	for _, c := range []struct {
		method, path string
		body         []byte
		code         int
		msg          string
	}{
		{"GET", "/v1/records/nothing", nil, 404, "no such record"},
		{"GET", "/v1/keys/zz", nil, 400, "32 hexadecimal digits"},
		{"PUT", "/v1/records/x?foo=1", nil, 400, "takes only expiry"},
		{"PUT", "/v1/records/x", make([]byte, apiMaxRecord+1), 413, "too large"},
		{"GET", "/v1/records/x?owner=nope", nil, 400, "not a peer ID"},
		{"GET", "/v1/objects", nil, 405, "POST the object"},
		{"POST", "/v1/records/x", nil, 405, "read-only"},
		{"PUT", "/v1/records/", nil, 400, "empty record name"},
	} {
		code, body := apiDo(t, c.method, a, c.path, "", c.body)
		if code != c.code || !strings.Contains(string(body), c.msg) {
			t.Errorf("%s %s: %d %s, want %d and %q", c.method, c.path, code, body, c.code, c.msg)
		}
	}
	if code, _, se := runCmd("put", "--api", a, "onlyname"); code != 2 || !strings.Contains(se, "want 2 arguments") {
		t.Errorf("put without a file: %d %q", code, se)
	}
}

// A `pastry node` process killed with SIGKILL and restarted on the same
// data directory holds every record it held: the store is synced before
// a receipt is signed, and checked when it opens.
func TestNodeKill9KeepsRecords(t *testing.T) {
	if args := os.Getenv("PASTRY_NODE_CHILD"); args != "" {
		os.Exit(run(strings.Fields(args), os.Stdout, os.Stderr))
	}
	if testing.Short() {
		t.Skip("starts processes")
	}
	a := startTestDaemon(t, t.TempDir())
	startTestDaemon(t, t.TempDir(), "--bootstrap", a.p2pAddr())
	dataDir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	api := ln.Addr().String()
	ln.Close()
	storeRecords := func() int {
		resp, err := http.Get("http://" + api + "/metrics")
		if err != nil {
			return -1
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "pastry_store_records "); ok {
				n, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
				return int(n)
			}
		}
		return -1
	}
	// opened gets the records the store held when it opened, from the
	// node's log, before it joined and before any neighbour could send it
	// anything.
	start := func(opened chan<- int) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestNodeKill9KeepsRecords$")
		cmd.Env = append(os.Environ(), "PASTRY_NODE_CHILD=node --data-dir "+dataDir+" --listen /ip4/127.0.0.1/tcp/0 --api "+api+
			" --bootstrap "+a.p2pAddr()+" --log-level info")
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() {
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
				line := sc.Text()
				if i := strings.Index(line, "records="); strings.Contains(line, `msg="record store"`) && i >= 0 {
					n, _ := strconv.Atoi(strings.Fields(line[i+len("records="):])[0])
					opened <- n
				}
			}
		}()
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			var st statusJSON
			if resp, err := http.Get("http://" + api + "/v1/status"); err == nil {
				json.NewDecoder(resp.Body).Decode(&st)
				resp.Body.Close()
				if st.Status == "joined" {
					return cmd
				}
			}
			if time.Now().After(deadline) {
				t.Fatal("the node process did not join")
			}
		}
	}
	first, second := make(chan int, 1), make(chan int, 1)
	child := start(first)
	if n := <-first; n != 0 {
		t.Fatalf("a new store opened with %d records", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n = 20
	for i := range n {
		if _, err := a.d.node.Put(ctx, fmt.Sprintf("kept-%d", i), []byte("value"), 0); err != nil {
			t.Fatal(err)
		}
	}
	// Three nodes and K=5: every node holds every record.
	var held int
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if held = storeRecords(); held >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the node process holds %d records, want %d", held, n)
		}
	}
	if err := child.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	_ = child.Wait()
	start(second)
	if got := <-second; got != held {
		t.Fatalf("after kill -9 the store opened with %d records, it held %d", got, held)
	}
	t.Logf("held %d records before SIGKILL and after the restart", held)
}
