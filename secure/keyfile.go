package secure

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"

	"github.com/libp2p/go-libp2p/core/crypto"
)

// ErrKeyFile wraps every problem with an existing key file; the message
// says what is wrong and what to do.
var ErrKeyFile = errors.New("secure: bad key file")

// maxKeyFile bounds how much of a key file is read. An Ed25519 key file is
// 68 bytes; anything much larger is not ours.
const maxKeyFile = 4096

// LoadOrCreateKey returns the Ed25519 private key stored at path, creating
// it (and its directory, mode 0700) if the file does not exist. created
// reports whether a new key was generated.
//
// A new key is written atomically: to a temporary file in the same
// directory, synced, then linked into place, so a crash leaves either no
// file or a complete one. An existing file is never overwritten, even if
// another process creates it concurrently (that process's key wins and is
// returned).
//
// An existing file must be a regular file, not readable or writable by
// group or others, and hold exactly one canonically encoded Ed25519 private
// key whose public half matches its seed. Anything else is an error
// wrapping ErrKeyFile that says what is wrong; the file is left untouched.
func LoadOrCreateKey(path string) (priv crypto.PrivKey, created bool, err error) {
	return LoadOrCreateKeyWith(path, func() (crypto.PrivKey, error) { return GenerateKey(nil) })
}

// LoadOrCreateKeyWith is LoadOrCreateKey with the new key, if one is
// needed, from generate (a key that solves the identity puzzle, say).
func LoadOrCreateKeyWith(path string, generate func() (crypto.PrivKey, error)) (priv crypto.PrivKey, created bool, err error) {
	priv, err = loadKey(path)
	if err == nil {
		return priv, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	priv, err = generate()
	if err != nil {
		return nil, false, err
	}
	won, err := createKeyFile(path, priv)
	if err != nil {
		return nil, false, err
	}
	if !won { // someone else created the file first: use theirs
		priv, err = loadKey(path)
		if errors.Is(err, fs.ErrNotExist) {
			err = fmt.Errorf("%w: %s exists but cannot be opened (a dangling symbolic link?): fix or remove it", ErrKeyFile, path)
		}
		return priv, false, err
	}
	return priv, true, nil
}

// loadKey reads and checks an existing key file. A missing file is an
// error wrapping fs.ErrNotExist.
func loadKey(path string) (crypto.PrivKey, error) {
	data, err := readFile(path, maxKeyFile, ErrKeyFile, "create a new identity")
	if err != nil {
		return nil, err
	}
	priv, err := parseKey(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w; restore the file from a backup, or move it aside to create a new identity (the node's id will change)", ErrKeyFile, path, err)
	}
	return priv, nil
}

// LoadKey reads an existing node key file, checked as LoadOrCreateKey
// checks it; a missing file is an error too (wrapping ErrKeyFile and
// fs.ErrNotExist).
func LoadKey(path string) (crypto.PrivKey, error) {
	priv, err := loadKey(path)
	if errors.Is(err, fs.ErrNotExist) && !errors.Is(err, ErrKeyFile) {
		err = fmt.Errorf("%w: %w", ErrKeyFile, err)
	}
	return priv, err
}

// ParseKey decodes the contents of a key file. It is LoadOrCreateKey's
// parser without the file system, for tests and fuzzing.
func ParseKey(data []byte) (crypto.PrivKey, error) {
	priv, err := parseKey(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeyFile, err)
	}
	return priv, nil
}

func parseKey(data []byte) (crypto.PrivKey, error) {
	switch {
	case len(data) == 0:
		return nil, errors.New("file is empty")
	case len(data) > maxKeyFile:
		return nil, fmt.Errorf("file is larger than %d bytes, not a key file", maxKeyFile)
	}
	priv, err := crypto.UnmarshalPrivateKey(data)
	if err != nil {
		if errors.Is(err, crypto.ErrBadKeyType) {
			return nil, fmt.Errorf("%w: unknown key type", ErrKeyType)
		}
		return nil, fmt.Errorf("corrupt or truncated key: %v", err)
	}
	if priv.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("%w: file holds a %s key", ErrKeyType, priv.Type())
	}
	raw, err := priv.Raw()
	if err != nil || len(raw) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("corrupt key: %d-byte Ed25519 key", len(raw))
	}
	// The encoding stores seed and public key; a flipped bit in the public
	// half would give a key that signs under one key and advertises another.
	if !bytes.Equal(ed25519.NewKeyFromSeed(raw[:ed25519.SeedSize]), raw) {
		return nil, errors.New("corrupt key: public key does not match private key")
	}
	canon, err := crypto.MarshalPrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("re-encode key: %v", err)
	}
	if !bytes.Equal(canon, data) {
		return nil, errors.New("corrupt key: not in canonical encoding (extra or reordered bytes)")
	}
	return priv, nil
}

// createKeyFile writes priv to path unless path exists. won is false when
// another file appeared at path first.
func createKeyFile(path string, priv crypto.PrivKey) (won bool, err error) {
	data, err := crypto.MarshalPrivateKey(priv)
	if err != nil {
		return false, fmt.Errorf("secure: encode key: %w", err)
	}
	return createFile(path, data)
}
