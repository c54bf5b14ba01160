package pastry

import (
	"bytes"
	"errors"
	"testing"

	"github.com/pastrynet/pastry/id"
)

// FuzzLookupAnswer: the lookup answer parser (the body of a lookupAnswer
// payload another node sent) never panics, refuses with errAnswer
// whatever appendAnswer cannot have written, and what it accepts
// re-encodes to the same bytes, with at most maxAnswerPath path entries.
// (The root package's decoders are fuzzed here rather than in fuzz/,
// which sees only exported APIs; .ci/run runs this target too.)
func FuzzLookupAnswer(f *testing.F) {
	var a, b id.ID
	a[0], b[15] = 0xab, 0xcd
	for _, path := range [][]id.ID{nil, {a}, {a, b, a}} {
		f.Add(appendAnswer(nil, uint16(len(path)), b, len(path), func(i int) id.ID { return path[i] }))
	}
	long := appendAnswer(nil, 300, a, 300, func(int) id.ID { return b })
	f.Add(long)
	f.Add([]byte{})
	f.Add([]byte{0, 1, 2})
	f.Add(append(appendAnswer(nil, 1, a, 1, func(int) id.ID { return a }), 0)) // trailing byte
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := parseAnswer(in)
		if err != nil {
			if !errors.Is(err, errAnswer) {
				t.Fatalf("error %v is not errAnswer", err)
			}
			return
		}
		if len(r.path) > maxAnswerPath || r.hops < 0 || r.hops > 0xffff {
			t.Fatalf("accepted %d path entries, %d hops", len(r.path), r.hops)
		}
		out := appendAnswer(nil, uint16(r.hops), r.root, len(r.path), func(i int) id.ID { return r.path[i] })
		if !bytes.Equal(out, in) {
			t.Fatalf("accepted %x, re-encoded %x", in, out)
		}
	})
}
