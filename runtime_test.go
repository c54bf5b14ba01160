package pastry

import (
	"go/parser"
	"go/token"
	"strconv"
	"strings"
	"testing"
)

// The event loop knows no libp2p: runtime.go drives the core over the
// transport's interfaces only, so that another transport needs no change
// to it. (The libp2p facade, node.go, builds the transport and translates
// peer IDs and addresses.)
func TestRuntimeKnowsNoLibp2p(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "runtime.go", nil, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		if strings.Contains(p, "libp2p") || strings.Contains(p, "multiformats") {
			t.Errorf("runtime.go imports %s", p)
		}
	}
}
