package core

import (
	"testing"

	"github.com/pastrynet/pastry/id"
)

func TestPayloadReader(t *testing.T) {
	h := id.Handle{ID: id.ID{1}, Addr: "a"}
	b := AppendHandle([]byte{1, 0, 2, 0, 0, 0, 3}, h)
	r := NewPayloadReader(b)
	if r.Bool() != true || r.U16() != 2 || r.U32() != 3 || r.Handle() != h || r.Bad() || r.Len() != 0 || r.Rest() != nil {
		t.Fatal("round trip")
	}
	for name, f := range map[string]func(r *PayloadReader){
		"bool 2":       func(r *PayloadReader) { r.Bool() },
		"short u64":    func(r *PayloadReader) { r.U64() },
		"empty handle": func(r *PayloadReader) { r.Handle() },
	} {
		in := map[string][]byte{"bool 2": {2}, "short u64": {1, 2, 3}, "empty handle": make([]byte, id.Len+1)}[name]
		r := NewPayloadReader(in)
		f(r)
		if !r.Bad() || r.U8() != 0 || r.Take(0) != nil {
			t.Errorf("%s: not bad, or reads after the failure returned data", name)
		}
	}
}
