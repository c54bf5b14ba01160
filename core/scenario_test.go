package core_test

import (
	"testing"

	"github.com/pastrynet/pastry/simnet/scenario"
)

// TestScenarios runs the protocol's scripts in testdata/*.txt (see package
// scenario for the language). Regenerate the golden output with
//
//	go test ./core -run TestScenarios -rewrite
//
// and read the diff before committing it.
func TestScenarios(t *testing.T) { scenario.Walk(t, "testdata", nil) }
