package lookup

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/pastrynet/pastry/id"
)

// FuzzLookupAnswer: the answer parser (a payload another node sent) never
// panics, refuses with ErrAnswer whatever answer.append cannot have
// written, and what it accepts re-encodes to the same bytes, with at most
// MaxAnswerPath path entries and MaxAnswerLeaves leaf-set ids. (The
// decoder is unexported, so its target lives here rather than in fuzz/;
// .ci/run runs it too.)
func FuzzLookupAnswer(f *testing.F) {
	var a, b id.ID
	a[0], b[15] = 0xab, 0xcd
	for _, path := range [][]id.ID{nil, {a}, {a, b, a}} {
		x := answer{req: 7, key: a, hops: uint16(len(path)), root: b, path: path}
		f.Add(x.append(nil))
	}
	long := answer{req: 1, hops: 300, root: a, path: make([]id.ID, 300)}
	f.Add(long.append(nil))
	f.Add([]byte{})
	f.Add([]byte{kindAnswer, 1, 2})
	f.Add(appendRequest(nil, 9))
	one := answer{req: 3, hops: 1, root: a, path: []id.ID{a}}
	f.Add(append(one.append(nil), 0)) // trailing byte
	leafy := answer{req: 4, key: b, hops: 2, root: a, path: []id.ID{b, a}, leaves: []id.ID{a, b, a}}
	f.Add(leafy.append(nil))
	leafy.sig = make([]byte, sigLen)
	f.Add(leafy.append(nil))
	many := answer{req: 5, root: b, leaves: make([]id.ID, 70)} // written as 64
	f.Add(many.append(nil))
	claim := answer{kind: kindClaim, req: 6, key: b, root: a, leaves: []id.ID{a, b}}
	f.Add(claim.append(nil))
	witness := answer{kind: kindWitnessReply, req: 8, key: b, hops: 3, root: a, leaves: []id.ID{b}}
	f.Add(witness.append(nil))
	f.Fuzz(func(t *testing.T, in []byte) {
		x, err := parseAnswer(in)
		if err != nil {
			if !errors.Is(err, ErrAnswer) {
				t.Fatalf("error %v is not ErrAnswer", err)
			}
			return
		}
		if len(x.path) > MaxAnswerPath || len(x.leaves) > MaxAnswerLeaves {
			t.Fatalf("accepted %d path entries, %d leaves", len(x.path), len(x.leaves))
		}
		if out := x.append(nil); !bytes.Equal(out, in) {
			t.Fatalf("accepted %x, re-encoded %x", in, out)
		}
	})
}

// FuzzLookupRequest: the request parser accepts exactly what
// appendRequest writes.
func FuzzLookupRequest(f *testing.F) {
	f.Add(appendRequest(nil, 1))
	f.Add([]byte{kindRequest})
	f.Add([]byte{kindAnswer, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, in []byte) {
		req, ok := parseRequest(in)
		if !ok {
			return
		}
		if out := appendRequest(nil, req); !bytes.Equal(out, in) {
			t.Fatalf("accepted %x, re-encoded %x", in, out)
		}
	})
}

// FuzzLeavesReply: the density refresh's reply parser (density.go)
// never panics, accepts at most MaxAnswerLeaves ids, and what it accepts
// re-encodes to the same bytes. Claims share the answer's parser
// (FuzzLookupAnswer, whose corpus has one).
func FuzzLeavesReply(f *testing.F) {
	var a id.ID
	a[3] = 9
	f.Add(appendLeavesReply(nil, 1, nil))
	f.Add(appendLeavesReply(nil, 2, []id.ID{a, a}))
	f.Add(appendLeavesReply(nil, 3, make([]id.ID, 70)))
	f.Add([]byte{kindLeavesReply, 0, 0, 0, 0, 0, 0, 0, 1, 2})
	claim := answer{kind: kindClaim, req: 5, root: a, leaves: []id.ID{a}}
	f.Add(claim.append(nil))
	f.Fuzz(func(t *testing.T, in []byte) {
		nonce, ids, ok := parseLeavesReply(in)
		if !ok {
			return
		}
		if len(ids) > MaxAnswerLeaves {
			t.Fatalf("accepted %d ids", len(ids))
		}
		if out := appendLeavesReply(nil, nonce, ids); !bytes.Equal(out, in) {
			t.Fatalf("accepted %x, re-encoded %x", in, out)
		}
	})
}

// FuzzFillPayloads: the constrained-table fill's probe and answer
// parsers (payloads other nodes send, fill.go) never panic, accept at
// most maxFillAnswer handles, and what they accept re-encodes to the
// same bytes.
func FuzzFillPayloads(f *testing.F) {
	var a, b id.ID
	a[0], b[15] = 0xab, 0xcd
	probe := func(tag uint64, row byte) []byte {
		return append(binary.BigEndian.AppendUint64([]byte{kindFillProbe}, tag), row)
	}
	f.Add(probe(7, 0))
	f.Add(probe(1, 31))
	f.Add(probe(1, 200))
	f.Add(appendFillAnswer(nil, 9, nil))
	f.Add(appendFillAnswer(nil, 9, []id.Handle{{ID: a, Addr: "x"}}))
	f.Add(appendFillAnswer(nil, 9, []id.Handle{{ID: a, Addr: "x"}, {ID: b, Addr: "yz"}}))
	f.Add(append(appendFillAnswer(nil, 9, []id.Handle{{ID: a, Addr: "x"}}), 0)) // trailing byte
	f.Add([]byte{kindFillAnswer, 0, 0, 0, 0, 0, 0, 0, 1, 3})
	f.Add([]byte{kindHello})
	f.Fuzz(func(t *testing.T, in []byte) {
		if tag, row, ok := parseFillProbe(in); ok {
			if out := probe(tag, byte(row)); !bytes.Equal(out, in) {
				t.Fatalf("probe %x re-encoded %x", in, out)
			}
		}
		tag, hs, ok := parseFillAnswer(in)
		if !ok {
			return
		}
		if len(hs) > maxFillAnswer {
			t.Fatalf("accepted %d handles", len(hs))
		}
		if out := appendFillAnswer(nil, tag, hs); !bytes.Equal(out, in) {
			t.Fatalf("answer %x re-encoded %x", in, out)
		}
	})
}

// FuzzWitnessRequest: the witness request's parser (witness.go) accepts
// exactly what askWitnesses writes: a kind byte, a request id and a key.
func FuzzWitnessRequest(f *testing.F) {
	var k id.ID
	k[0], k[15] = 0x12, 0x34
	f.Add(append(binary.BigEndian.AppendUint64([]byte{kindWitnessRequest}, 7), k[:]...))
	f.Add([]byte{kindWitnessRequest, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Add(append(appendRequest(nil, 3), k[:]...))
	f.Fuzz(func(t *testing.T, in []byte) {
		req, key, ok := parseWitnessRequest(in)
		if !ok {
			return
		}
		if out := append(binary.BigEndian.AppendUint64([]byte{kindWitnessRequest}, req), key[:]...); !bytes.Equal(out, in) {
			t.Fatalf("accepted %x, re-encoded %x", in, out)
		}
	})
}
