package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Delay injection (transport.InjectDelay) for test networks on machines
// without tc netem: the bench harness (bench/cluster) gives each node the
// one-way delay of its links to the others. See decisions/0073.

// Bounds of the injected delays and of the latency file.
const (
	maxInjectDelay  = 10 * time.Second
	maxLatencyFile  = 8 << 20
	maxLatencyPeers = 100_000
)

// injectFlags are `pastry node`'s --inject-delay and --inject-latency.
type injectFlags struct {
	delay time.Duration
	file  string
}

func (f *injectFlags) register(fs *flag.FlagSet) {
	fs.DurationVar(&f.delay, "inject-delay", 0, "TEST NETWORKS ONLY: hold every frame sent to any peer this long (an emulated one-way link delay, where tc netem is missing); 0 to 10s")
	fs.StringVar(&f.file, "inject-latency", "", "TEST NETWORKS ONLY: JSON file of one-way delays per peer, {\"default\": \"0s\", \"peers\": {\"PEERID\": \"25ms\", ...}}; overrides --inject-delay for the peers it names")
}

// injectedDelays maps a peer to the delay injected into frames sent to it.
type injectedDelays struct {
	def   time.Duration
	peers map[peer.ID]time.Duration
}

func (d *injectedDelays) of(p peer.ID) time.Duration {
	if v, ok := d.peers[p]; ok {
		return v
	}
	return d.def
}

// load checks the flags and reads the file; nil when neither is set.
func (f *injectFlags) load() (*injectedDelays, error) {
	if f.delay < 0 || f.delay > maxInjectDelay {
		return nil, fmt.Errorf("--inject-delay: %v, want 0 to %v", f.delay, maxInjectDelay)
	}
	if f.file == "" {
		if f.delay == 0 {
			return nil, nil
		}
		return &injectedDelays{def: f.delay}, nil
	}
	data, err := readBounded(f.file, maxLatencyFile)
	if err != nil {
		return nil, fmt.Errorf("--inject-latency %s: %w", f.file, err)
	}
	d, err := parseLatencyFile(data, f.delay)
	if err != nil {
		return nil, fmt.Errorf("--inject-latency %s: %w", f.file, err)
	}
	return d, nil
}

// readBounded reads at most limit bytes of path, refusing a larger file.
func readBounded(path string, limit int64) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	return data, nil
}

// latencyFile is the --inject-latency file.
type latencyFile struct {
	Default *string           `json:"default"`
	Peers   map[string]string `json:"peers"`
}

// parseLatencyFile decodes a latency file strictly: one JSON object,
// known keys only, every peer ID valid, every delay a Go duration from 0
// to 10 s. def is the delay for peers it does not name, unless it sets
// "default".
func parseLatencyFile(data []byte, def time.Duration) (*injectedDelays, error) {
	var lf latencyFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&lf); err != nil {
		return nil, fmt.Errorf("not a latency file (want {\"default\": \"0s\", \"peers\": {\"PEERID\": \"25ms\"}}): %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("not a latency file: more than one JSON value")
	}
	if len(lf.Peers) > maxLatencyPeers {
		return nil, fmt.Errorf("%d peers, at most %d", len(lf.Peers), maxLatencyPeers)
	}
	d := &injectedDelays{def: def, peers: make(map[peer.ID]time.Duration, len(lf.Peers))}
	if lf.Default != nil {
		v, err := parseInjectDelay(*lf.Default)
		if err != nil {
			return nil, fmt.Errorf("\"default\": %w", err)
		}
		d.def = v
	}
	for k, s := range lf.Peers {
		p, err := peer.Decode(k)
		if err != nil {
			return nil, fmt.Errorf("peer %q: not a peer ID: %w", k, err)
		}
		v, err := parseInjectDelay(s)
		if err != nil {
			return nil, fmt.Errorf("peer %s: %w", k, err)
		}
		d.peers[p] = v
	}
	return d, nil
}

func parseInjectDelay(s string) (time.Duration, error) {
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (e.g. \"25ms\")", s)
	}
	if v < 0 || v > maxInjectDelay {
		return 0, fmt.Errorf("%v, want 0 to %v", v, maxInjectDelay)
	}
	return v, nil
}
