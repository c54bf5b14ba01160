package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pastrynet/pastry/secure"
)

// runKeygen is `pastry keygen [--out FILE]`. With --out it writes a new
// Ed25519 identity to FILE (mode 0600, its directory created 0700),
// refusing to replace an existing file, and prints the identity. Without
// --out it is a dry run: it prints a fresh identity and writes nothing (the
// key is discarded), which shows what ids look like; `pastry node` creates
// DATA_DIR/key by itself on first start, so keygen is only needed to make
// a key ahead of time (e.g. to know a bootstrap node's peer ID).
func runKeygen(args []string, stdout, stderr io.Writer) error {
	fls := flag.NewFlagSet("keygen", flag.ContinueOnError)
	fls.SetOutput(stderr)
	out := fls.String("out", "", "write the key to this file, e.g. DATA_DIR/key (refuses to overwrite); without it nothing is written")
	fls.Usage = func() {
		fmt.Fprintf(stderr, `usage: pastry keygen [--out FILE]

Creates a new node identity (an Ed25519 key) and prints its peer ID and
node id. Only with --out is the key kept: use DATA_DIR/key for a node's
data directory. An existing file is never overwritten.

flags:
`)
		fls.PrintDefaults()
	}
	if err := fls.Parse(args); err != nil {
		return err
	}
	if fls.NArg() > 0 {
		return usageError(fls, "unexpected argument %q", fls.Arg(0))
	}
	if *out == "" {
		key, err := secure.GenerateKey(nil)
		if err != nil {
			return err
		}
		p, err := peer.IDFromPrivateKey(key)
		if err != nil {
			return err
		}
		if err := printIdentity(stdout, p); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "not saved: use --out FILE to keep a key\n")
		return nil
	}
	if _, err := os.Lstat(*out); err == nil {
		return fmt.Errorf("--out %s: the file exists; refusing to overwrite a key: choose another path or move it aside", *out)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("--out %s: %w", *out, err)
	}
	key, created, err := secure.LoadOrCreateKey(*out)
	if err != nil {
		return fmt.Errorf("--out %s: %w", *out, err)
	}
	if !created {
		return fmt.Errorf("--out %s: another process created the file first; it was left alone", *out)
	}
	p, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return err
	}
	if err := printIdentity(stdout, p); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "key      %s\n", *out)
	return nil
}

func printIdentity(w io.Writer, p peer.ID) error {
	nid, err := secure.NodeIDFromPeer(p)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "peer id  %s\nnode id  %s\n", p, nid)
	return err
}
