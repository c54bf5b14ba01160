package main

import (
	"bytes"
	"encoding/json"
	"runtime"
	"strings"
	"testing"
)

func TestVersionCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"version"}, &out, &errOut); code != 0 {
		t.Fatalf("version: exit %d: %s", code, errOut.String())
	}
	line := out.String()
	for _, want := range []string{"pastry ", runtime.Version(), runtime.GOOS + "/" + runtime.GOARCH, "protocol /pastry/1.0.0"} {
		if !strings.Contains(line, want) {
			t.Errorf("version %q lacks %q", line, want)
		}
	}
	out.Reset()
	if code := run([]string{"version", "--json"}, &out, &errOut); code != 0 {
		t.Fatalf("version --json: exit %d", code)
	}
	var v versionInfo
	if err := json.Unmarshal(out.Bytes(), &v); err != nil || v.Version == "" || v.Go != runtime.Version() || v.Protocol != "/pastry/1.0.0" {
		t.Fatalf("version --json: %+v %v\n%s", v, err, out.String())
	}
	if code := run([]string{"version", "extra"}, &out, &errOut); code != 2 {
		t.Errorf("version extra: exit %d, want 2", code)
	}
}

func TestVersionShort(t *testing.T) {
	for _, c := range []struct {
		v    versionInfo
		want string
	}{
		{versionInfo{Version: "(devel)"}, "(devel)"},
		{versionInfo{Version: "(devel)", Commit: "1a2b3c4d5e6f7a8b9c0d", Modified: true}, "(devel) 1a2b3c4d5e6f+modified"},
		{versionInfo{Version: "v0.0.0-20261203114519-1a2b3c4d5e6f+dirty", Commit: "1a2b3c4d5e6f7a8b9c0d", Modified: true}, "v0.0.0-20261203114519-1a2b3c4d5e6f+dirty"},
		{versionInfo{Version: "v1.2.3", Commit: "abc"}, "v1.2.3 abc"},
	} {
		if got := c.v.Short(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.v, got, c.want)
		}
	}
}
