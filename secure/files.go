package secure

import (
	"bytes"
	"crypto/ed25519"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrCertFile wraps every problem with a certificate file.
var ErrCertFile = errors.New("secure: bad certificate file")

// The files of the certificate authority and of certified nodes are PEM
// (RFC 7468 text: a BEGIN line naming the type, base64 lines of 64
// characters, an END line, a final newline), one block, no headers, in
// exactly the form encoding/pem writes; a file in any other form, or of
// another type, is refused. The types:
const (
	// PEMAuthorityKey holds the authority's 32-byte Ed25519 seed (its
	// private key). Mode 0600; keep it offline.
	PEMAuthorityKey = "PASTRY CA PRIVATE KEY"
	// PEMAuthorityPub holds the authority's 32-byte Ed25519 public key,
	// which every node of the network is given.
	PEMAuthorityPub = "PASTRY CA PUBLIC KEY"
	// PEMCertificate holds a node certificate in its binary encoding
	// (Certificate.MarshalBinary).
	PEMCertificate = "PASTRY NODE CERTIFICATE"
)

// maxPEMFile bounds how much of a PEM file is read: a certificate's is
// under 400 bytes.
const maxPEMFile = 4096

// EncodePEM is the file of one block of type typ holding data.
func EncodePEM(typ string, data []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: data})
}

// decodePEM returns the contents of a file of type typ.
func decodePEM(data []byte, typ string) ([]byte, error) {
	switch {
	case len(data) == 0:
		return nil, errors.New("file is empty")
	case len(data) > maxPEMFile:
		return nil, fmt.Errorf("file is larger than %d bytes, not a %s file", maxPEMFile, typ)
	}
	b, rest := pem.Decode(data)
	switch {
	case b == nil:
		return nil, fmt.Errorf("not a PEM file (want a %q block)", typ)
	case b.Type != typ:
		return nil, fmt.Errorf("holds a %q, want a %q", b.Type, typ)
	case len(b.Headers) > 0:
		return nil, errors.New("PEM headers are not allowed")
	case len(rest) > 0:
		return nil, fmt.Errorf("%d bytes after the PEM block", len(rest))
	case !bytes.Equal(pem.EncodeToMemory(b), data):
		return nil, errors.New("not in canonical form (line breaks, spaces or padding changed?): use the file as written")
	}
	return b.Bytes, nil
}

// MarshalAuthorityKey is the authority's private key file.
func MarshalAuthorityKey(a *Authority) []byte { return EncodePEM(PEMAuthorityKey, a.Seed()) }

// MarshalAuthorityPub is the file of an authority public key.
func MarshalAuthorityPub(pub ed25519.PublicKey) []byte { return EncodePEM(PEMAuthorityPub, pub) }

// MarshalCertificateFile is the file of a certificate.
func MarshalCertificateFile(c *Certificate) ([]byte, error) {
	b, err := c.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return EncodePEM(PEMCertificate, b), nil
}

// ParseAuthorityKey decodes an authority's private key file; errors wrap
// ErrKeyFile.
func ParseAuthorityKey(data []byte) (*Authority, error) {
	seed, err := decodePEM(data, PEMAuthorityKey)
	if err == nil && len(seed) != ed25519.SeedSize {
		err = fmt.Errorf("%d-byte seed, want %d", len(seed), ed25519.SeedSize)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeyFile, err)
	}
	return AuthorityFromSeed(seed)
}

// ParseAuthorityPub decodes an authority public key file, and checks the
// key (CheckAuthorityKey); errors wrap ErrKeyFile.
func ParseAuthorityPub(data []byte) (ed25519.PublicKey, error) {
	pub, err := decodePEM(data, PEMAuthorityPub)
	if err == nil {
		err = CheckAuthorityKey(pub)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeyFile, err)
	}
	return ed25519.PublicKey(pub), nil
}

// ParseCertificateFile decodes a certificate file (ParseCertificate inside
// the PEM block); errors wrap ErrCertFile, and ErrCertMalformed when the
// block holds a malformed certificate. The signature is not checked.
func ParseCertificateFile(data []byte) (*Certificate, error) {
	der, err := decodePEM(data, PEMCertificate)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCertFile, err)
	}
	c, err := ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCertFile, err)
	}
	return c, nil
}

// LoadAuthorityKey reads an authority's private key file, which must not
// be readable by group or others.
func LoadAuthorityKey(path string) (*Authority, error) {
	return loadFile(path, ErrKeyFile, "create a new authority and issue every certificate again", ParseAuthorityKey)
}

// LoadAuthorityPub reads an authority public key file.
func LoadAuthorityPub(path string) (ed25519.PublicKey, error) {
	return loadFile(path, ErrKeyFile, "", ParseAuthorityPub)
}

// LoadCertificate reads a certificate file (not its signature: Verify).
func LoadCertificate(path string) (*Certificate, error) {
	return loadFile(path, ErrCertFile, "", ParseCertificateFile)
}

// loadFile reads the file at path (readFile) and parses it; every error
// wraps kind and names path, a missing file's fs.ErrNotExist too.
func loadFile[T any](path string, kind error, secretHint string, parse func([]byte) (T, error)) (T, error) {
	var zero T
	data, err := readFile(path, maxPEMFile, kind, secretHint)
	if err != nil {
		return zero, notExist(err, kind)
	}
	v, err := parse(data)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// notExist wraps a missing file's error in kind too.
func notExist(err, kind error) error {
	if errors.Is(err, fs.ErrNotExist) && !errors.Is(err, kind) {
		return fmt.Errorf("%w: %w", kind, err)
	}
	return err
}

// CreateFile writes data to a new file at path, mode 0600 (its directory
// created 0700), atomically: a crash leaves no file or the whole one. An
// existing file is never replaced: that is an error wrapping fs.ErrExist.
func CreateFile(path string, data []byte) error {
	won, err := createFile(path, data)
	if err == nil && !won {
		err = fmt.Errorf("secure: %s: %w; refusing to replace it", path, fs.ErrExist)
	}
	return err
}

// createFile writes data to path unless path exists: to a temporary file
// in the same directory, synced, then linked into place, and the
// directory synced. won is false when another file appeared at path
// first.
func createFile(path string, data []byte) (won bool, err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, fmt.Errorf("secure: create directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".pastry-"+filepath.Base(path)+"-*.tmp")
	if err != nil {
		return false, fmt.Errorf("secure: create %s: %w", path, err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // after a successful link this removes only the temporary name
	if err := writeSynced(tmp, data); err != nil {
		return false, fmt.Errorf("secure: write %s: %w", tmpName, err)
	}
	// Link, unlike rename, fails if path exists: an existing file is never
	// replaced, even one created a moment ago by another process.
	if err := os.Link(tmpName, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return false, nil
		}
		// File systems without hard links: check, then rename (atomic, but
		// no longer safe against a concurrent creator).
		if _, serr := os.Lstat(path); serr == nil {
			return false, nil
		}
		if rerr := os.Rename(tmpName, path); rerr != nil {
			return false, fmt.Errorf("secure: install %s: %w", path, rerr)
		}
	}
	if err := syncDir(dir); err != nil {
		return false, fmt.Errorf("secure: sync directory %s: %w", dir, err)
	}
	return true, nil
}

// readFile reads an existing regular file of at most max bytes (an error
// wrapping kind otherwise). A missing file is an error wrapping
// fs.ErrNotExist only. With secretHint, the file holds a private key: it
// must not be accessible by group or others, and the error says to
// chmod it, or to secretHint if others could read it.
func readFile(path string, max int, kind error, secretHint string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %s: %v", kind, path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", kind, path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file (%s); point the path at a file", kind, path, st.Mode().Type())
	}
	if perm := st.Mode().Perm(); secretHint != "" && perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s is accessible by group or others (mode %04o); the private key may have leaked: run chmod 600 %s, or %s if others could read it",
			kind, path, perm, path, secretHint)
	}
	data, err := io.ReadAll(io.LimitReader(f, int64(max)+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read %s: %v", kind, path, err)
	}
	if len(data) > max {
		return nil, fmt.Errorf("%w: %s: file is larger than %d bytes, not a key or certificate file", kind, path, max)
	}
	return data, nil
}

func writeSynced(f *os.File, data []byte) error {
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
