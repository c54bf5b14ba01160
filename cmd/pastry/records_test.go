package main

import (
	"net/http"
	"strings"
	"testing"
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
		{"GET", "/v1/records/x?owner=nope", nil, 400, "not an Ed25519 peer ID"},
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
