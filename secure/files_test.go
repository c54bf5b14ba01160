package secure

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAuthorityAndCertificateFilesRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	a := testAuthority(t, 1)
	keyPath, pubPath, certPath := filepath.Join(dir, "ca.key"), filepath.Join(dir, "ca.pub"), filepath.Join(dir, "node.cert")
	c, _ := testCert(t, a, 1)
	certFile, err := MarshalCertificateFile(c)
	if err != nil {
		t.Fatal(err)
	}
	for path, data := range map[string][]byte{keyPath: MarshalAuthorityKey(a), pubPath: MarshalAuthorityPub(a.Public()), certPath: certFile} {
		if err := CreateFile(path, data); err != nil {
			t.Fatal(err)
		}
		if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: mode %04o", path, st.Mode().Perm())
		}
		// Never replaced.
		if err := CreateFile(path, []byte("other")); !errors.Is(err, fs.ErrExist) {
			t.Fatalf("second CreateFile: %v", err)
		}
		if got, _ := os.ReadFile(path); !bytes.Equal(got, data) {
			t.Fatalf("%s was replaced", path)
		}
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Fatalf("directory mode %04o", st.Mode().Perm())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 3 {
		t.Fatalf("%d entries: a temporary file left behind?", len(ents))
	}
	a2, err := LoadAuthorityKey(keyPath)
	if err != nil || !bytes.Equal(a2.Public(), a.Public()) {
		t.Fatalf("LoadAuthorityKey: %v", err)
	}
	pub, err := LoadAuthorityPub(pubPath)
	if err != nil || !bytes.Equal(pub, a.Public()) {
		t.Fatalf("LoadAuthorityPub: %v", err)
	}
	c2, err := LoadCertificate(certPath)
	if err != nil || c2.NodeID() != c.NodeID() {
		t.Fatalf("LoadCertificate: %v", err)
	}
	if !strings.HasPrefix(string(certFile), "-----BEGIN PASTRY NODE CERTIFICATE-----\n") {
		t.Fatalf("certificate file:\n%s", certFile)
	}
}

func TestLoadFilesRejectBadFiles(t *testing.T) {
	a := testAuthority(t, 1)
	c, _ := testCert(t, a, 1)
	certFile, _ := MarshalCertificateFile(c)
	keyFile, pubFile := MarshalAuthorityKey(a), MarshalAuthorityPub(a.Public())
	der, _ := c.MarshalBinary()
	load := map[string]func(string) error{
		"key":  func(p string) error { _, err := LoadAuthorityKey(p); return err },
		"pub":  func(p string) error { _, err := LoadAuthorityPub(p); return err },
		"cert": func(p string) error { _, err := LoadCertificate(p); return err },
	}
	kinds := map[string]error{"key": ErrKeyFile, "pub": ErrKeyFile, "cert": ErrCertFile}
	cases := []struct {
		name, kind string
		data       []byte
		mode       os.FileMode
		want       string
	}{
		{"empty", "cert", nil, 0o600, "empty"},
		{"raw binary", "cert", der, 0o600, "not a PEM file"},
		{"public key as certificate", "cert", pubFile, 0o600, `holds a "PASTRY CA PUBLIC KEY", want a "PASTRY NODE CERTIFICATE"`},
		{"certificate as authority key", "key", certFile, 0o600, "want a \"PASTRY CA PRIVATE KEY\""},
		{"private key as public", "pub", keyFile, 0o600, "want a \"PASTRY CA PUBLIC KEY\""},
		{"trailing data", "cert", append(bytes.Clone(certFile), "x"...), 0o600, "after the PEM block"},
		{"CRLF", "cert", bytes.ReplaceAll(certFile, []byte("\n"), []byte("\r\n")), 0o600, "canonical"},
		{"headers", "cert", pemWithHeaders(t, PEMCertificate, der), 0o600, "headers"},
		{"malformed certificate", "cert", EncodePEM(PEMCertificate, der[:50]), 0o600, "malformed certificate"},
		{"short seed", "key", EncodePEM(PEMAuthorityKey, make([]byte, 31)), 0o600, "31-byte seed"},
		{"zero public key", "pub", EncodePEM(PEMAuthorityPub, make([]byte, 32)), 0o600, "all-zero"},
		{"huge", "pub", bytes.Repeat([]byte{'A'}, maxPEMFile+1), 0o600, "larger than"},
		{"readable key", "key", keyFile, 0o640, "chmod 600"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeKeyFile(t, tc.data, tc.mode)
			err := load[tc.kind](path)
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, kinds[tc.kind]) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("err = %q, want %v mentioning %q and the path", err, kinds[tc.kind], tc.want)
			}
		})
	}
	// A readable public key or certificate is fine: they are public.
	if _, err := LoadAuthorityPub(writeKeyFile(t, pubFile, 0o644)); err != nil {
		t.Fatal(err)
	}
	for kind, f := range load {
		missing := filepath.Join(t.TempDir(), "missing")
		if err := f(missing); !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, kinds[kind]) || !strings.Contains(err.Error(), missing) {
			t.Errorf("%s, missing file: %v", kind, err)
		}
		if err := f(t.TempDir()); !errors.Is(err, kinds[kind]) || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("%s, a directory: %v", kind, err)
		}
	}
}

// pemWithHeaders is a PEM block with a header, which encoding/pem would
// write but the files refuse.
func pemWithHeaders(t *testing.T, typ string, data []byte) []byte {
	t.Helper()
	s := string(EncodePEM(typ, data))
	i := strings.Index(s, "\n")
	return []byte(s[:i+1] + "Proc-Type: 4,ENCRYPTED\n\n" + s[i+1:])
}

func TestLoadKeyRequiresTheFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "key")
	if _, err := LoadKey(missing); !errors.Is(err, ErrKeyFile) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing: %v", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("LoadKey created a key")
	}
	priv, _, err := LoadOrCreateKey(missing)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := LoadKey(missing); err != nil || !got.Equals(priv) {
		t.Fatalf("LoadKey: %v", err)
	}
}
