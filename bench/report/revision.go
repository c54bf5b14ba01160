package report

import (
	"os/exec"
	"runtime/debug"
	"strings"
)

// Revision is the commit the binary was built from, as the Go toolchain
// stamped it, with " (modified)" when the tree had changes; when nothing
// is stamped (go run, go test), the working tree's commit as git tells
// it; "" when neither knows. The reports of pastry sim report, pastry
// bench cluster and bench/compare record it.
func Revision() string {
	var rev, dirty string
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = " (modified)"
				}
			}
		}
	}
	if rev != "" {
		return rev + dirty
	}
	out, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		return ""
	}
	rev = strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		dirty = " (modified)"
	}
	return rev + dirty
}
