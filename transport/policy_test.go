package transport

import (
	"testing"

	"github.com/pastrynet/pastry/id"
)

// The transport signs with its host's key, and a signature verifies only
// against the signer's handle and the data signed.
func TestSignVerify(t *testing.T) {
	a, b := newNode(t, 71), newNode(t, 72)
	data := []byte("answer")
	sig, err := a.t.Sign(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		h    id.Handle
		data []byte
		sig  []byte
		want bool
	}{
		{"the signer", a.t.Local(), data, sig, true},
		{"another node", b.t.Local(), data, sig, false},
		{"other data", a.t.Local(), []byte("answer!"), sig, false},
		{"a cut signature", a.t.Local(), data, sig[:63], false},
		{"no peer ID", id.Handle{ID: a.t.Local().ID}, data, sig, false},
	} {
		if got := b.t.Verify(tc.h, tc.data, tc.sig); got != tc.want {
			t.Errorf("%s: Verify = %v, want %v", tc.name, got, tc.want)
		}
	}
}
