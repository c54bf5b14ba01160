package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/pastrynet/pastry/transport"
)

// versionInfo describes this binary, from what the go command stamped
// into it (runtime/debug.ReadBuildInfo).
type versionInfo struct {
	// Version is the module's version when the binary was built with
	// `go install github.com/pastrynet/pastry/cmd/pastry@VERSION`, else
	// "(devel)".
	Version string `json:"version"`
	// Commit and Modified are the VCS revision and whether the work tree
	// had changes, when built with `go build` in a checkout (go run and
	// -buildvcs=false leave them out).
	Commit   string `json:"commit,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go"`
	Platform string `json:"platform"`
	// Protocol is the wire protocol ID this binary speaks (without a
	// network prefix).
	Protocol string `json:"protocol"`
}

func readVersion() versionInfo {
	v := versionInfo{
		Version: "(devel)", Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH,
		Protocol: string(transport.ProtocolID("")),
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if bi.Main.Version != "" {
		v.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

// Short is the version and, when known and not already in it (Go 1.24 and
// later stamp a build in a checkout with a pseudo-version holding the
// commit), the commit: "(devel) 1a2b3c4d5e6f+modified".
func (v versionInfo) Short() string {
	s := v.Version
	c := v.Commit
	if len(c) > 12 {
		c = c[:12]
	}
	if c != "" && !strings.Contains(s, c) {
		s += " " + c
		if v.Modified {
			s += "+modified"
		}
	}
	return s
}

// runVersion is `pastry version [--json]`.
func runVersion(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: pastry version [--json]\n\nPrints this binary's version, commit, Go version and wire protocol.\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError(fs, "unexpected argument %q", fs.Arg(0))
	}
	v := readVersion()
	if *asJSON {
		out, _ := json.MarshalIndent(v, "", "  ")
		return printRaw(stdout, out)
	}
	_, err := fmt.Fprintf(stdout, "pastry %s, %s %s, protocol %s\n", v.Short(), v.Go, v.Platform, v.Protocol)
	return err
}
