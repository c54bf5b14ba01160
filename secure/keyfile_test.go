package secure

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
)

func TestLoadOrCreateKeyReusesKeyAcrossRestarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "node.key")
	k1, created, err := LoadOrCreateKey(path)
	if err != nil || !created {
		t.Fatalf("first call: created=%v err=%v", created, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %04o, want 0600", st.Mode().Perm())
	}
	if dst, _ := os.Stat(filepath.Dir(path)); dst.Mode().Perm() != 0o700 {
		t.Fatalf("key dir mode %04o, want 0700", dst.Mode().Perm())
	}
	before, _ := os.ReadFile(path)
	for i := range 3 { // "restarts"
		k2, created, err := LoadOrCreateKey(path)
		if err != nil || created {
			t.Fatalf("restart %d: created=%v err=%v", i, created, err)
		}
		if !k1.Equals(k2) {
			t.Fatalf("restart %d: different key", i)
		}
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatal("loading rewrote the key file")
	}
	n1, _ := NodeID(k1.GetPublic())
	k3, _, _ := LoadOrCreateKey(path)
	if n3, _ := NodeID(k3.GetPublic()); n3 != n1 {
		t.Fatal("node id changed across restart")
	}
	// No temporary files are left behind.
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Fatalf("directory holds %d entries, want just the key", len(ents))
	}
}

func TestLoadOrCreateKeyConcurrentCreatorsAgree(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.key")
	const n = 8
	keys := make([]crypto.PrivKey, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { keys[i], _, errs[i] = LoadOrCreateKey(path) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("creator %d: %v", i, errs[i])
		}
		if !keys[i].Equals(keys[0]) {
			t.Fatalf("creator %d got a different key: a file was overwritten", i)
		}
	}
}

func writeKeyFile(t *testing.T, data []byte, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "node.key")
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // umask-proof
		t.Fatal(err)
	}
	return path
}

func TestLoadOrCreateKeyRejectsBadFiles(t *testing.T) {
	priv, _ := GenerateKey(seeded(9))
	good, err := crypto.MarshalPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	secp, _, _ := crypto.GenerateSecp256k1Key(seeded(10))
	secpBytes, _ := crypto.MarshalPrivateKey(secp)
	badPub := bytes.Clone(good)
	badPub[len(badPub)-1] ^= 1 // last byte of the embedded public key
	unknownType := bytes.Clone(good)
	unknownType[1] = 77 // KeyType enum value no one knows

	cases := []struct {
		name string
		data []byte
		mode os.FileMode
		want string // in the error message
		is   error
	}{
		{"empty", nil, 0o600, "empty", nil},
		{"truncated", good[:len(good)-5], 0o600, "corrupt or truncated", nil},
		{"garbage", bytes.Repeat([]byte{0xff}, 68), 0o600, "corrupt", nil},
		{"trailing bytes", append(bytes.Clone(good), 0x18, 0x01), 0o600, "canonical", nil},
		{"public half mismatch", badPub, 0o600, "does not match", nil},
		{"secp256k1", secpBytes, 0o600, "Secp256k1", ErrKeyType},
		{"unknown type", unknownType, 0o600, "unknown key type", ErrKeyType},
		{"huge", bytes.Repeat([]byte{1}, maxKeyFile+10), 0o600, "larger than", nil},
		{"group readable", good, 0o640, "chmod 600", nil},
		{"world readable", good, 0o604, "chmod 600", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeKeyFile(t, c.data, c.mode)
			before, _ := os.ReadFile(path)
			k, created, err := LoadOrCreateKey(path)
			if err == nil {
				t.Fatalf("accepted: key=%v created=%v", k, created)
			}
			if !errors.Is(err, ErrKeyFile) {
				t.Errorf("err = %v, want ErrKeyFile", err)
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("err = %v, want %v", err, c.is)
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("err = %q, want it to mention %q and the path", err, c.want)
			}
			after, _ := os.ReadFile(path)
			if !bytes.Equal(before, after) {
				t.Error("bad key file was modified")
			}
		})
	}
}

func TestLoadOrCreateKeyRejectsDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.key")
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateKey(path); !errors.Is(err, ErrKeyFile) || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("err = %v", err)
	}
}

func TestLoadOrCreateKeyUnwritableDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores directory permissions")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o700) })
	if _, _, err := LoadOrCreateKey(filepath.Join(dir, "node.key")); err == nil {
		t.Fatal("created a key in a read-only directory")
	}
}

func TestParseKeyRoundTrip(t *testing.T) {
	priv, _ := GenerateKey(seeded(11))
	data, _ := crypto.MarshalPrivateKey(priv)
	got, err := ParseKey(data)
	if err != nil || !got.Equals(priv) {
		t.Fatalf("ParseKey = %v, %v", got, err)
	}
	if _, err := ParseKey(data[:10]); !errors.Is(err, ErrKeyFile) {
		t.Fatalf("truncated: err = %v", err)
	}
}

func TestLoadOrCreateKeyDanglingSymlink(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "node.key")
	if err := os.Symlink(filepath.Join(dir, "missing"), path); err != nil {
		t.Fatal(err)
	}
	_, _, err := LoadOrCreateKey(path)
	if !errors.Is(err, ErrKeyFile) || !strings.Contains(err.Error(), "dangling") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("wrote through the symbolic link")
	}
}
