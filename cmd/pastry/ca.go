package main

import (
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pastrynet/pastry/secure"
	"github.com/pastrynet/pastry/transport"
)

// The files `pastry ca init` writes in its --out directory.
const (
	caKeyFile = "ca.key"
	caPubFile = "ca.pub"
)

// Bounds of `pastry ca issue --validity`.
const (
	defaultCertValidity = 365 * 24 * time.Hour
	maxCertValidity     = 10 * 365 * 24 * time.Hour
)

// runCA is `pastry ca init|issue`: the certificate authority of a
// network in certificate mode (secure/doc.go).
func runCA(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ca", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, `usage: pastry ca init --out DIR
       pastry ca issue --ca-key FILE --network NAME (--node-key FILE | --node-pub PEERID) --out FILE [--validity 8760h]

The certificate authority of a network whose nodes hold certificates:
  init   creates an authority: DIR/%s (its private key, mode 0600: keep it
         offline) and DIR/%s (its public key, for every node's --ca-pub)
  issue  certifies a node's key for a network and prints the node id the
         certificate gives it (derived from the key and a nonce the
         authority chooses, so the node cannot choose it)

A node checks its certificate at start with pastry node --ca-pub FILE
--cert FILE --network NAME, and with --secure as well the network runs in
certificate mode: the node's id is the certified one and peers without a
valid certificate are refused (docs/operations.md, "A secure network").

Run 'pastry ca init -h' or 'pastry ca issue -h' for their flags.
`, caKeyFile, caPubFile)
	}
	if len(args) == 0 {
		return usageError(fs, "missing subcommand: init or issue")
	}
	switch args[0] {
	case "init":
		return runCAInit(args[1:], stdout, stderr)
	case "issue":
		return runCAIssue(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fs.Usage()
		return flag.ErrHelp
	}
	return usageError(fs, "unknown subcommand %q: want init or issue", args[0])
}

// runCAInit is `pastry ca init --out DIR`.
func runCAInit(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ca init", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "directory for "+caKeyFile+" and "+caPubFile+" (created 0700 if needed; existing files are never replaced)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: pastry ca init --out DIR\n\nCreates a certificate authority: DIR/%s, its private key (mode 0600;\nkeep it offline), and DIR/%s, its public key (give it to every node).\n\nflags:\n", caKeyFile, caPubFile)
		fs.PrintDefaults()
	}
	if err := parseClientArgs(fs, args, 0); err != nil {
		return err
	}
	if *out == "" {
		return usageError(fs, "--out DIR is required")
	}
	keyPath, pubPath := filepath.Join(*out, caKeyFile), filepath.Join(*out, caPubFile)
	for _, p := range []string{keyPath, pubPath} {
		if err := mustNotExist(p); err != nil {
			return fmt.Errorf("--out %s: %w", *out, err)
		}
	}
	a, err := secure.NewAuthority(nil)
	if err != nil {
		return err
	}
	if err := secure.CreateFile(keyPath, secure.MarshalAuthorityKey(a)); err != nil {
		return fmt.Errorf("--out %s: %w", *out, err)
	}
	if err := secure.CreateFile(pubPath, secure.MarshalAuthorityPub(a.Public())); err != nil {
		return fmt.Errorf("--out %s: %w (the private key %s was written: remove it before trying again)", *out, err, keyPath)
	}
	_, err = fmt.Fprintf(stdout, "authority key  %s (keep it offline)\npublic key     %s (for every node's --ca-pub)\nfingerprint    %s\n",
		keyPath, pubPath, hex.EncodeToString(a.Public()))
	return err
}

// mustNotExist refuses a path where a file (or anything) already is.
func mustNotExist(path string) error {
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("%s exists; refusing to overwrite it: choose another path or move it aside", path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// runCAIssue is `pastry ca issue`.
func runCAIssue(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ca issue", flag.ContinueOnError)
	fs.SetOutput(stderr)
	caKey := fs.String("ca-key", "", "the authority's private key file (DIR/"+caKeyFile+" of pastry ca init)")
	network := fs.String("network", "", "the network's name (1 to 64 printable ASCII characters, no spaces); nodes check it with --network")
	nodeKey := fs.String("node-key", "", "the node's key file (its DATA_DIR/key); or --node-pub")
	nodePub := fs.String("node-pub", "", "the node's peer ID (12D3KooW..., printed by pastry keygen or pastry id); or --node-key")
	validity := fs.Duration("validity", defaultCertValidity, "how long the certificate is valid (at most 87600h); it starts 5 minutes before now")
	out := fs.String("out", "", "the certificate file to write (mode 0600; an existing file is never replaced)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, `usage: pastry ca issue --ca-key FILE --network NAME (--node-key FILE | --node-pub PEERID) --out FILE [--validity 8760h]

Certifies a node's key for a network and prints the certified node id,
the first 128 bits of SHA-256(public key || nonce), the nonce chosen here.
Each certificate issued to a key gives it another id.

flags:
`)
		fs.PrintDefaults()
	}
	if err := parseClientArgs(fs, args, 0); err != nil {
		return err
	}
	switch {
	case *caKey == "":
		return usageError(fs, "--ca-key FILE is required")
	case *network == "":
		return usageError(fs, "--network NAME is required")
	case (*nodeKey == "") == (*nodePub == ""):
		return usageError(fs, "give exactly one of --node-key FILE and --node-pub PEERID")
	case *out == "":
		return usageError(fs, "--out FILE is required")
	case *validity <= 0 || *validity > maxCertValidity:
		return usageError(fs, "--validity %v: want more than 0, at most %v", *validity, maxCertValidity)
	}
	if err := secure.CheckNetworkName(*network); err != nil {
		return usageError(fs, "--network: %v", err)
	}
	if err := mustNotExist(*out); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	var pub crypto.PubKey
	if *nodePub != "" {
		p, err := peer.Decode(*nodePub)
		if err == nil {
			_, err = secure.NodeIDFromPeer(p)
		}
		if err != nil {
			return fmt.Errorf("--node-pub %q: not a pastry node's peer ID (%v); want the peer ID of an Ed25519 key, 12D3KooW...", *nodePub, err)
		}
		pub, _ = p.ExtractPublicKey()
	} else {
		priv, err := secure.LoadKey(*nodeKey)
		if err != nil {
			return fmt.Errorf("--node-key: %w", err)
		}
		pub = priv.GetPublic()
	}
	a, err := secure.LoadAuthorityKey(*caKey)
	if err != nil {
		return fmt.Errorf("--ca-key: %w", err)
	}
	c, err := a.Issue(pub, *network, time.Now(), *validity, nil)
	if err != nil {
		return err
	}
	data, err := secure.MarshalCertificateFile(c)
	if err != nil {
		return err
	}
	if err := secure.CreateFile(*out, data); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	p, err := c.PeerID()
	if err != nil {
		return err
	}
	from, until := c.Validity()
	_, err = fmt.Fprintf(stdout, "certified node id  %s\npeer id            %s\nnetwork            %s\nvalid              %s to %s\ncertificate        %s\n",
		c.NodeID(), p, c.Network, from.UTC().Format(time.RFC3339), until.UTC().Format(time.RFC3339), *out)
	return err
}

// checkNodeCert loads the certificate and authority key the config names
// and checks the certificate for this node's key (priv) at now. The error
// names the setting to fix and what to do.
func checkNodeCert(cfg nodeConfig, priv crypto.PrivKey, now time.Time) (*secure.Certificate, error) {
	ca, err := secure.LoadAuthorityPub(cfg.CAPub)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.from("ca_pub"), err)
	}
	c, err := secure.LoadCertificate(cfg.Cert)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.from("cert"), err)
	}
	p, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		return nil, err
	}
	err = c.VerifyPeer(ca, cfg.Network, p, now)
	if err == nil {
		return c, nil
	}
	hint := ""
	switch {
	case errors.Is(err, secure.ErrCertExpired), errors.Is(err, secure.ErrCertNotYetValid):
		hint = "check this machine's clock, or ask the authority for a new certificate (pastry ca issue)"
	case errors.Is(err, secure.ErrCertForeignNetwork):
		hint = "check " + cfg.from("network") + ", or use a certificate for this network"
	case errors.Is(err, secure.ErrCertKeyMismatch):
		hint = "the certificate is another node's: DATA_DIR/key is " + p.String() + "; issue one with pastry ca issue --node-pub " + p.String()
	case errors.Is(err, secure.ErrCertSignature):
		hint = "it was not issued by the authority of " + cfg.from("ca_pub") + " (or was altered)"
	}
	return nil, fmt.Errorf("%s %s: %w; %s", cfg.from("cert"), cfg.Cert, err, hint)
}

// certSecurity is certificate mode for a node whose certificate cert
// checkNodeCert accepted.
func certSecurity(cfg nodeConfig, cert *secure.Certificate) (transport.Security, error) {
	ca, err := secure.LoadAuthorityPub(cfg.CAPub)
	if err != nil {
		return transport.Security{}, fmt.Errorf("%s: %w", cfg.from("ca_pub"), err)
	}
	v, err := secure.NewVerifier(ca, cfg.Network, 0, nil)
	if err != nil {
		return transport.Security{}, fmt.Errorf("%s: %w", cfg.from("ca_pub"), err)
	}
	return transport.Security{Verifier: v, Own: cert}, nil
}
