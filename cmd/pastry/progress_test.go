package main

import (
	"bytes"
	"strings"
	"testing"
)

// Off a terminal, progress is a line at each phase's end (and every 30 s
// of wall time in between, not reached here) with the share done, events
// per second, the time left and the heap.
func TestProgressLine(t *testing.T) {
	var w bytes.Buffer
	var ev uint64
	p := progressLine(&w, false, func() uint64 { return ev })
	for i := 1; i <= 100; i++ {
		ev += 1000
		p("join", i, 100)
	}
	p("lookups", 1, 2)
	out := w.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1 {
		t.Fatalf("want one line (the finished phase), got %d:\n%s", len(lines), out)
	}
	for _, want := range []string{"join: 100/100 (100.0%)", "events/s", "ETA 0s", "heap "} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("line %q lacks %q", lines[0], want)
		}
	}
}
