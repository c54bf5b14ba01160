package fuzz

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/pastrynet/pastry/secure"
)

const certNet = "fuzznet"

var certTime = time.Unix(1_800_000_000, 0)

// certSeeds returns an authority and three certificates it issued
// (encoded).
func certSeeds(tb testing.TB) (*secure.Authority, [][]byte) {
	tb.Helper()
	a, err := secure.NewAuthority(rand.NewChaCha8([32]byte{0xca}))
	if err != nil {
		tb.Fatal(err)
	}
	var out [][]byte
	for i := range 3 {
		priv, err := secure.GenerateKey(rand.NewChaCha8([32]byte{byte(i), 0xce}))
		if err != nil {
			tb.Fatal(err)
		}
		c, err := a.Issue(priv.GetPublic(), certNet, certTime, time.Duration(i+1)*time.Hour, rand.NewChaCha8([32]byte{byte(i), 0x0c}))
		if err != nil {
			tb.Fatal(err)
		}
		b, err := c.MarshalBinary()
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	return a, out
}

// FuzzCertificate: what ParseCertificate accepts re-encodes to the same
// bytes; a refusal wraps ErrCertMalformed; Verify passes only for bytes
// the authority signed, and refuses anything else with one reason; batch
// verification agrees with ed25519.Verify on the certificate's signature.
func FuzzCertificate(f *testing.F) {
	a, good := certSeeds(f)
	for _, b := range good {
		f.Add(b)
		f.Add(b[:len(b)-1])
		f.Add(append(bytes.Clone(b), 0))
		flipped := bytes.Clone(b)
		flipped[len(b)-80] ^= 0x20
		f.Add(flipped)
	}
	goodCert, _ := secure.ParseCertificate(good[0])
	short := *goodCert
	short.Nonce = short.Nonce[:16] // well-formed, its signature now wrong
	if b, err := short.MarshalBinary(); err == nil {
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{1}, secure.MaxCertLen))
	ca := a.Public()
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := secure.ParseCertificate(data)
		if err != nil {
			if c != nil || !errors.Is(err, secure.ErrCertMalformed) {
				t.Fatalf("refusal %v with %v", err, c)
			}
			return
		}
		again, err := c.MarshalBinary()
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("re-encodes to %x (%v), read %x", again, err, data)
		}
		if c.NodeID() != c.NodeID() {
			t.Fatal("NodeID is not a function of the certificate")
		}
		verr := c.Verify(ca, certNet, certTime)
		if verr == nil && !slices.ContainsFunc(good, func(g []byte) bool { return bytes.Equal(g, data) }) {
			t.Fatalf("Verify accepts bytes the authority did not sign: %x", data)
		}
		if verr != nil && (secure.CertReason(verr) == "other" || secure.CertReason(verr) == "") {
			t.Fatalf("refusal without a reason: %v", verr)
		}
		// The batch verifier against crypto/ed25519 on this signature.
		items := []secure.Signed{
			{PublicKey: ca, Message: append([]byte(secure.CertContext), again[:len(again)-64]...), Signature: c.Signature[:]},
			{PublicKey: ca, Message: append([]byte(secure.CertContext), good[0][:len(good[0])-64]...), Signature: goodCert.Signature[:]},
		}
		valid, all, err := secure.VerifyBatch(items, rand.NewChaCha8([32]byte{1}))
		if err != nil || !valid[1] {
			t.Fatalf("batch: %v, %v", valid, err)
		}
		if want := ed25519.Verify(ca, items[0].Message, items[0].Signature); valid[0] != want || all != want {
			t.Fatalf("batch says %v (all %v), ed25519.Verify %v", valid[0], all, want)
		}
	})
}

// FuzzCertificateFile: each of the PEM files (certificate, authority
// public key, authority private key) loads only in exactly the form it
// is written in, so what loads re-encodes to the same bytes, and no file
// loads as two kinds.
func FuzzCertificateFile(f *testing.F) {
	a, good := certSeeds(f)
	c, _ := secure.ParseCertificate(good[0])
	certFile, err := secure.MarshalCertificateFile(c)
	if err != nil {
		f.Fatal(err)
	}
	for _, b := range [][]byte{certFile, secure.MarshalAuthorityPub(a.Public()), secure.MarshalAuthorityKey(a)} {
		f.Add(b)
		f.Add(b[:len(b)-1])
		f.Add(bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n")))
	}
	f.Add(good[0])
	f.Add([]byte("-----BEGIN PASTRY NODE CERTIFICATE-----\n-----END PASTRY NODE CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		loaded := 0
		if c, err := secure.ParseCertificateFile(data); err == nil {
			loaded++
			if again, err := secure.MarshalCertificateFile(c); err != nil || !bytes.Equal(again, data) {
				t.Fatalf("certificate file re-encodes to %q (%v)", again, err)
			}
		} else if c != nil || !errors.Is(err, secure.ErrCertFile) {
			t.Fatalf("certificate file refused with %v", err)
		}
		if pub, err := secure.ParseAuthorityPub(data); err == nil {
			loaded++
			if !bytes.Equal(secure.MarshalAuthorityPub(pub), data) || secure.CheckAuthorityKey(pub) != nil {
				t.Fatal("authority public key file does not round-trip")
			}
		} else if pub != nil || !errors.Is(err, secure.ErrKeyFile) {
			t.Fatalf("public key file refused with %v", err)
		}
		if ca, err := secure.ParseAuthorityKey(data); err == nil {
			loaded++
			if !bytes.Equal(secure.MarshalAuthorityKey(ca), data) {
				t.Fatal("authority key file does not round-trip")
			}
		} else if ca != nil || !errors.Is(err, secure.ErrKeyFile) {
			t.Fatalf("authority key file refused with %v", err)
		}
		if loaded > 1 {
			t.Fatalf("loads as %d kinds of file", loaded)
		}
	})
}
