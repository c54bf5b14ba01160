package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/pastrynet/pastry/secure"
	"github.com/pastrynet/pastry/transport"
)

// nodeConfig is the configuration of `pastry node`. Each setting comes
// from, in order of precedence: a flag, an environment variable, the
// config file, the default. origin records where each came from, so that
// an error names the flag, variable or file key to fix.
type nodeConfig struct {
	Listen         []string
	Announce       []string
	Bootstrap      []string
	DataDir        string
	API            string
	Token          string
	ProtocolPrefix string
	LogLevel       string
	SaveInterval   time.Duration
	ConnsLow       int
	ConnsHigh      int
	AddrPolicy     string
	Pprof          bool
	CAPub          string        // the certificate authority's public key file
	Cert           string        // this node's certificate file
	Network        string        // the network's name, which the certificate must carry
	Secure         bool          // certificate mode: admission by certificate enforced
	PuzzleBits     int           // open mode's identity puzzle, c1 (0: off)
	StoreCapacity  int64         // bytes of records the store holds at most; 0: no limit
	OwnerQuota     int64         // bytes of one owner's records the store holds at most; 0: no limit
	RouteCache     int64         // bytes of the cache of records along read routes; 0: none
	InjectDelay    time.Duration // --inject-delay: test networks only (inject.go)
	InjectLatency  string        // --inject-latency FILE: test networks only

	origin map[string]string // setting -> "--flag", "PASTRY_X" or "file F: key"

	// Filled by validate.
	bootstrap []peer.AddrInfo
	level     slog.Level
	policy    transport.AddrPolicy
	delays    *injectedDelays // nil: none injected
}

// The defaults of `pastry node`.
const (
	defaultAPI          = "127.0.0.1:7700"
	defaultSaveInterval = 30 * time.Second
	apiOff              = "off"
)

var defaultListen = []string{"/ip4/0.0.0.0/tcp/7701", "/ip4/0.0.0.0/udp/7701/quic-v1"}

// Bounds checked by validate.
const (
	maxListen      = 16
	maxBootstrap   = 64
	maxConfigFile  = 1 << 20
	minTokenLen    = 16
	maxTokenLen    = 256
	maxPrefixLen   = 64
	maxStoreBytes  = 1 << 50 // 1 PiB: a bound on the byte settings
	maxConns       = 10000
	minSaveEvery   = time.Second
	maxSaveEvery   = time.Hour
	defaultDataDir = ".pastry" // under the home directory
)

// setting describes one configuration setting's three names.
type setting struct {
	key, flag, env string
}

// The settings, by key (the config file's JSON key).
var settings = map[string]setting{
	"listen":          {"listen", "--listen", "PASTRY_LISTEN"},
	"announce":        {"announce", "--announce", "PASTRY_ANNOUNCE"},
	"bootstrap":       {"bootstrap", "--bootstrap", "PASTRY_BOOTSTRAP"},
	"data_dir":        {"data_dir", "--data-dir", "PASTRY_DATA_DIR"},
	"api":             {"api", "--api", "PASTRY_API"},
	"token":           {"token", "--token", "PASTRY_TOKEN"},
	"protocol_prefix": {"protocol_prefix", "--protocol-prefix", "PASTRY_PROTOCOL_PREFIX"},
	"log_level":       {"log_level", "--log-level", "PASTRY_LOG_LEVEL"},
	"save_interval":   {"save_interval", "--save-interval", "PASTRY_SAVE_INTERVAL"},
	"conns_low":       {"conns_low", "--conns-low", "PASTRY_CONNS_LOW"},
	"conns_high":      {"conns_high", "--conns-high", "PASTRY_CONNS_HIGH"},
	"addr_policy":     {"addr_policy", "--addr-policy", "PASTRY_ADDR_POLICY"},
	"pprof":           {"pprof", "--pprof", "PASTRY_PPROF"},
	"ca_pub":          {"ca_pub", "--ca-pub", "PASTRY_CA_PUB"},
	"cert":            {"cert", "--cert", "PASTRY_CERT"},
	"network":         {"network", "--network", "PASTRY_NETWORK"},
	"secure":          {"secure", "--secure", "PASTRY_SECURE"},
	"puzzle_bits":     {"puzzle_bits", "--puzzle-bits", "PASTRY_PUZZLE_BITS"},
	"store_capacity":  {"store_capacity", "--store-capacity", "PASTRY_STORE_CAPACITY"},
	"owner_quota":     {"owner_quota", "--owner-quota", "PASTRY_OWNER_QUOTA"},
	"route_cache":     {"route_cache", "--route-cache", "PASTRY_ROUTE_CACHE"},
}

func defaultNodeConfig() nodeConfig {
	c := nodeConfig{
		Listen:       append([]string(nil), defaultListen...),
		API:          defaultAPI,
		LogLevel:     "info",
		SaveInterval: defaultSaveInterval,
		ConnsLow:     256,
		ConnsHigh:    384,
		AddrPolicy:   transport.AddrsAll.String(),
		origin:       map[string]string{},
	}
	if home, err := os.UserHomeDir(); err == nil && home != "" {
		c.DataDir = filepath.Join(home, defaultDataDir)
	}
	for k := range settings {
		c.origin[k] = "default"
	}
	return c
}

// from names where setting key came from, for error messages.
func (c *nodeConfig) from(key string) string {
	switch o := c.origin[key]; o {
	case "", "default":
		return settings[key].flag + " (default)"
	default:
		return o
	}
}

// listFlag is a repeatable flag whose values may also be comma-separated.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	*l = append(*l, splitList(s)...)
	return nil
}

// splitList splits a list given as one string on commas and white space.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
}

// nodeFlags are the flag values of `pastry node` before precedence.
type nodeFlags struct {
	listen, announce, bootstrap                 listFlag
	dataDir, api, token, prefix, config, logLvl string
	addrPolicy, caPub, cert, network            string
	saveInterval                                time.Duration
	connsLow, connsHigh, puzzleBits             int
	pprof, secure                               bool
	storeCapacity, ownerQuota, routeCache       int64
	inject                                      injectFlags
}

func newNodeFlagSet(f *nodeFlags, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Var(&f.listen, "listen", "multiaddr to listen on; repeat or comma-separate (default "+strings.Join(defaultListen, ",")+")")
	fs.Var(&f.announce, "announce", "multiaddr to advertise instead of the listen addresses (behind NAT or port forwarding); repeat or comma-separate (default: the listen addresses)")
	fs.Var(&f.bootstrap, "bootstrap", "multiaddr of a node to join through, with /p2p/PEERID; repeat or comma-separate")
	fs.StringVar(&f.dataDir, "data-dir", "", "directory for the identity key and saved peers (default ~/"+defaultDataDir+")")
	fs.StringVar(&f.api, "api", "", "HTTP API address host:port, or \"off\" (default "+defaultAPI+")")
	fs.StringVar(&f.token, "token", "", "bearer token the HTTP API requires; mandatory when --api is not loopback")
	fs.StringVar(&f.prefix, "protocol-prefix", "", "network prefix: the protocol becomes PREFIX/pastry/1.0.0 (default none)")
	fs.StringVar(&f.config, "config", "", "JSON config file (env PASTRY_CONFIG); see docs/operations.md for its keys")
	fs.StringVar(&f.logLvl, "log-level", "", "debug, info, warn or error (default info)")
	fs.DurationVar(&f.saveInterval, "save-interval", 0, "how often to save known peers to DATA_DIR/peers.json (default 30s)")
	fs.IntVar(&f.connsLow, "conns-low", 0, "connection manager low watermark (default 256)")
	fs.IntVar(&f.connsHigh, "conns-high", 0, "connection manager high watermark (default 384)")
	fs.BoolVar(&f.pprof, "pprof", false, "serve the Go runtime's profiles on the HTTP API under /debug/pprof/ (behind --token like the rest)")
	fs.StringVar(&f.addrPolicy, "addr-policy", "", "addresses the node dials and learns from peers: all, public (for the internet: no private or loopback ones) or private (stay inside a LAN) (default all)")
	fs.StringVar(&f.caPub, "ca-pub", "", "the certificate authority's public key file (pastry ca init); with --cert and --network")
	fs.StringVar(&f.cert, "cert", "", "this node's certificate file (pastry ca issue), checked at start against --ca-pub, --network and DATA_DIR/key; the node refuses to start if it is expired, foreign, of another key or malformed")
	fs.IntVar(&f.puzzleBits, "puzzle-bits", 0, "open mode's identity puzzle, c1 (0 to 32; 0: off): every node's key must have SHA-256(SHA-256(key)) start with c1 zero bits, and peers whose keys do not are refused; a new DATA_DIR/key is made to solve it (about 2^c1 key generations of ~17 us); the same on every node of the network")
	fs.BoolVar(&f.secure, "secure", false, "certificate mode: the node's id is its certificate's, and only peers with valid certificates of --ca-pub's authority for --network are admitted (needs --cert, --ca-pub, --network; every node of the network must run with it)")
	fs.StringVar(&f.network, "network", "", "the network's name, which --cert must carry (1 to 64 printable ASCII characters, no spaces)")
	fs.Int64Var(&f.storeCapacity, "store-capacity", 0, "bytes of records this node stores at most (0: no limit); when full, it diverts replicas to leaf-set neighbours (PAST's replica diversion)")
	fs.Int64Var(&f.ownerQuota, "owner-quota", 0, "bytes of one owner's records this node stores at most (0: no limit)")
	fs.Int64Var(&f.routeCache, "route-cache", 0, "bytes of the cache of records read through this node (caching along routes; 0: none)")
	f.inject.register(fs)
	fs.Usage = func() {
		fmt.Fprintf(stderr, `usage: pastry node [flags]

Runs one Pastry node: its identity is DATA_DIR/key (created on first start),
its last known peers DATA_DIR/peers.json (rejoined from on restart, after any
--bootstrap). Without --bootstrap and saved peers it starts a new overlay.
Each setting also comes from an environment variable (PASTRY_LISTEN,
PASTRY_ANNOUNCE, PASTRY_BOOTSTRAP, PASTRY_DATA_DIR, PASTRY_API,
PASTRY_TOKEN, PASTRY_PROTOCOL_PREFIX, PASTRY_LOG_LEVEL,
PASTRY_SAVE_INTERVAL, PASTRY_CONNS_LOW, PASTRY_CONNS_HIGH,
PASTRY_ADDR_POLICY, PASTRY_PPROF, PASTRY_CA_PUB, PASTRY_CERT, PASTRY_NETWORK,
PASTRY_STORE_CAPACITY, PASTRY_OWNER_QUOTA, PASTRY_ROUTE_CACHE)
or the config file's key of the same name in lower case (listen, bootstrap,
data_dir, ...); a flag beats the environment, which beats the file, which
beats the default.

With --ca-pub, --cert and --network the node checks its certificate at
start and logs the certified node id. With --secure as well the network
runs in certificate mode: the node's id is the certified one, every
handle carries its node's certificate, and peers whose certificates are
missing, expired, of another network or authority, or do not match are
refused (see docs/operations.md, "A secure network").

flags:
`)
		fs.PrintDefaults()
	}
	return fs
}

// loadNodeConfig resolves `pastry node`'s configuration from args, the
// environment (getenv) and the config file, and validates it.
func loadNodeConfig(args []string, getenv func(string) string, stderr io.Writer) (nodeConfig, error) {
	var f nodeFlags
	fs := newNodeFlagSet(&f, stderr)
	if err := fs.Parse(args); err != nil {
		return nodeConfig{}, err
	}
	if fs.NArg() > 0 {
		return nodeConfig{}, usageError(fs, "unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })

	c := defaultNodeConfig()
	path, pathFrom := getenv("PASTRY_CONFIG"), "PASTRY_CONFIG"
	if set["config"] {
		path, pathFrom = f.config, "--config"
	}
	if path != "" {
		if err := c.applyFile(path); err != nil {
			return nodeConfig{}, fmt.Errorf("%s %s: %w", pathFrom, path, err)
		}
	}
	if err := c.applyEnv(getenv); err != nil {
		return nodeConfig{}, err
	}
	flagVal := map[string]func(){
		"listen":          func() { c.Listen = f.listen },
		"announce":        func() { c.Announce = f.announce },
		"bootstrap":       func() { c.Bootstrap = f.bootstrap },
		"data-dir":        func() { c.DataDir = f.dataDir },
		"api":             func() { c.API = f.api },
		"token":           func() { c.Token = f.token },
		"protocol-prefix": func() { c.ProtocolPrefix = f.prefix },
		"log-level":       func() { c.LogLevel = f.logLvl },
		"save-interval":   func() { c.SaveInterval = f.saveInterval },
		"conns-low":       func() { c.ConnsLow = f.connsLow },
		"conns-high":      func() { c.ConnsHigh = f.connsHigh },
		"addr-policy":     func() { c.AddrPolicy = f.addrPolicy },
		"pprof":           func() { c.Pprof = f.pprof },
		"ca-pub":          func() { c.CAPub = f.caPub },
		"cert":            func() { c.Cert = f.cert },
		"network":         func() { c.Network = f.network },
		"secure":          func() { c.Secure = f.secure },
		"puzzle-bits":     func() { c.PuzzleBits = f.puzzleBits },
		"store-capacity":  func() { c.StoreCapacity = f.storeCapacity },
		"owner-quota":     func() { c.OwnerQuota = f.ownerQuota },
		"route-cache":     func() { c.RouteCache = f.routeCache },
	}
	for key, s := range settings {
		name := strings.TrimPrefix(s.flag, "--")
		if set[name] {
			flagVal[name]()
			c.origin[key] = s.flag
		}
	}
	c.InjectDelay, c.InjectLatency = f.inject.delay, f.inject.file
	if err := c.validate(); err != nil {
		return nodeConfig{}, err // nothing half-applied
	}
	delays, err := f.inject.load()
	if err != nil {
		return nodeConfig{}, err
	}
	c.delays = delays
	return c, nil
}

// fileConfig is the config file: a JSON object whose keys are the
// settings' keys. Absent keys keep the default; unknown keys are errors.
type fileConfig struct {
	Listen         *[]string `json:"listen"`
	Announce       *[]string `json:"announce"`
	Bootstrap      *[]string `json:"bootstrap"`
	DataDir        *string   `json:"data_dir"`
	API            *string   `json:"api"`
	Token          *string   `json:"token"`
	ProtocolPrefix *string   `json:"protocol_prefix"`
	LogLevel       *string   `json:"log_level"`
	SaveInterval   *string   `json:"save_interval"` // a Go duration: "30s", "5m"
	ConnsLow       *int      `json:"conns_low"`
	ConnsHigh      *int      `json:"conns_high"`
	AddrPolicy     *string   `json:"addr_policy"`
	Pprof          *bool     `json:"pprof"`
	CAPub          *string   `json:"ca_pub"`
	Cert           *string   `json:"cert"`
	Network        *string   `json:"network"`
	Secure         *bool     `json:"secure"`
	PuzzleBits     *int      `json:"puzzle_bits"`
	StoreCapacity  *int64    `json:"store_capacity"` // bytes
	OwnerQuota     *int64    `json:"owner_quota"`    // bytes
	RouteCache     *int64    `json:"route_cache"`    // bytes
}

// applyFile reads the config file at path over c.
func (c *nodeConfig) applyFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("cannot read the config file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigFile+1))
	if err != nil {
		return fmt.Errorf("cannot read the config file: %w", err)
	}
	if len(data) > maxConfigFile {
		return fmt.Errorf("config file larger than %d bytes", maxConfigFile)
	}
	var fc fileConfig
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fc); err != nil {
		return fmt.Errorf("not a valid config file: %s", describeJSONError(data, err))
	}
	if _, err := dec.Token(); err == nil {
		return errors.New("not a valid config file: more than one JSON value")
	} else if err != io.EOF {
		return fmt.Errorf("not a valid config file: %s", describeJSONError(data, err))
	}
	if err := checkConfigKeys(data); err != nil {
		return fmt.Errorf("not a valid config file: %w", err)
	}
	at := func(key string) { c.origin[key] = fmt.Sprintf("config file %s: key %q", path, key) }
	if fc.Listen != nil {
		c.Listen = *fc.Listen
		at("listen")
	}
	if fc.Announce != nil {
		c.Announce = *fc.Announce
		at("announce")
	}
	if fc.Bootstrap != nil {
		c.Bootstrap = *fc.Bootstrap
		at("bootstrap")
	}
	str := func(key string, dst *string, v *string) {
		if v != nil {
			*dst = *v
			at(key)
		}
	}
	str("data_dir", &c.DataDir, fc.DataDir)
	str("api", &c.API, fc.API)
	str("token", &c.Token, fc.Token)
	str("protocol_prefix", &c.ProtocolPrefix, fc.ProtocolPrefix)
	str("log_level", &c.LogLevel, fc.LogLevel)
	str("addr_policy", &c.AddrPolicy, fc.AddrPolicy)
	str("ca_pub", &c.CAPub, fc.CAPub)
	str("cert", &c.Cert, fc.Cert)
	str("network", &c.Network, fc.Network)
	if fc.SaveInterval != nil {
		d, err := time.ParseDuration(*fc.SaveInterval)
		if err != nil {
			return fmt.Errorf("key \"save_interval\": %q is not a duration (e.g. \"30s\")", *fc.SaveInterval)
		}
		c.SaveInterval = d
		at("save_interval")
	}
	if fc.ConnsLow != nil {
		c.ConnsLow = *fc.ConnsLow
		at("conns_low")
	}
	if fc.ConnsHigh != nil {
		c.ConnsHigh = *fc.ConnsHigh
		at("conns_high")
	}
	if fc.Pprof != nil {
		c.Pprof = *fc.Pprof
		at("pprof")
	}
	if fc.Secure != nil {
		c.Secure = *fc.Secure
		at("secure")
	}
	if fc.PuzzleBits != nil {
		c.PuzzleBits = *fc.PuzzleBits
		at("puzzle_bits")
	}
	for key, v := range map[string]struct{ dst, src *int64 }{
		"store_capacity": {&c.StoreCapacity, fc.StoreCapacity},
		"owner_quota":    {&c.OwnerQuota, fc.OwnerQuota},
		"route_cache":    {&c.RouteCache, fc.RouteCache},
	} {
		if v.src != nil {
			*v.dst = *v.src
			at(key)
		}
	}
	return nil
}

// checkConfigKeys refuses what decoding into fileConfig lets through: a
// value other than an object (null), keys that name a setting only when
// case is ignored ("API"), and keys given twice. data is one valid JSON
// value.
func checkConfigKeys(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return errors.New("want a JSON object {...}")
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		line, col := lineCol(data, dec.InputOffset())
		if _, ok := settings[key]; !ok {
			return fmt.Errorf("line %d, column %d: unknown key %q (keys are lower case, e.g. \"listen\", \"data_dir\")", line, col, key)
		}
		if seen[key] {
			return fmt.Errorf("line %d, column %d: key %q given twice", line, col, key)
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return err
		}
	}
	return nil
}

// lineCol is the line and column of byte offset off of data.
func lineCol(data []byte, off int64) (line, col int) {
	return 1 + bytes.Count(data[:off], []byte("\n")), int(off) - bytes.LastIndexByte(data[:off], '\n')
}

// describeJSONError adds the line and column to a JSON decoding error.
func describeJSONError(data []byte, err error) string {
	var off int64 = -1
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	}
	if off < 0 || off > int64(len(data)) {
		return err.Error()
	}
	line, col := lineCol(data, off)
	return fmt.Sprintf("line %d, column %d: %v", line, col, err)
}

// applyEnv reads the PASTRY_* variables over c; empty ones are unset.
func (c *nodeConfig) applyEnv(getenv func(string) string) error {
	for key, s := range settings {
		v := getenv(s.env)
		if v == "" {
			continue
		}
		switch key {
		case "listen":
			c.Listen = splitList(v)
		case "announce":
			c.Announce = splitList(v)
		case "bootstrap":
			c.Bootstrap = splitList(v)
		case "data_dir":
			c.DataDir = v
		case "api":
			c.API = v
		case "token":
			c.Token = v
		case "protocol_prefix":
			c.ProtocolPrefix = v
		case "log_level":
			c.LogLevel = v
		case "addr_policy":
			c.AddrPolicy = v
		case "ca_pub":
			c.CAPub = v
		case "cert":
			c.Cert = v
		case "network":
			c.Network = v
		case "save_interval":
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("%s=%q is not a duration (e.g. 30s)", s.env, v)
			}
			c.SaveInterval = d
		case "pprof":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("%s=%q is not a boolean (true or false)", s.env, v)
			}
			c.Pprof = b
		case "secure":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("%s=%q is not a boolean (true or false)", s.env, v)
			}
			c.Secure = b
		case "puzzle_bits":
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("%s=%q is not a whole number", s.env, v)
			}
			c.PuzzleBits = n
		case "store_capacity", "owner_quota", "route_cache":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return fmt.Errorf("%s=%q is not an integer (bytes)", s.env, v)
			}
			*map[string]*int64{"store_capacity": &c.StoreCapacity, "owner_quota": &c.OwnerQuota, "route_cache": &c.RouteCache}[key] = n
		case "conns_low", "conns_high":
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("%s=%q is not an integer", s.env, v)
			}
			if key == "conns_low" {
				c.ConnsLow = n
			} else {
				c.ConnsHigh = n
			}
		}
		c.origin[key] = s.env
	}
	return nil
}

// validate checks every setting against its bounds and parses the
// multiaddrs; errors name where the bad value came from.
func (c *nodeConfig) validate() error {
	if len(c.Listen) == 0 {
		return fmt.Errorf("%s: at least one listen address is needed", c.from("listen"))
	}
	if len(c.Listen) > maxListen {
		return fmt.Errorf("%s: %d listen addresses, at most %d", c.from("listen"), len(c.Listen), maxListen)
	}
	for _, s := range c.Listen {
		if err := checkListenAddr(s); err != nil {
			return fmt.Errorf("%s: %w", c.from("listen"), err)
		}
	}
	if len(c.Announce) > maxListen {
		return fmt.Errorf("%s: %d announce addresses, at most %d", c.from("announce"), len(c.Announce), maxListen)
	}
	for _, s := range c.Announce {
		if err := checkAnnounceAddr(s); err != nil {
			return fmt.Errorf("%s: %w", c.from("announce"), err)
		}
	}
	pol, err := transport.ParseAddrPolicy(c.AddrPolicy)
	if err != nil {
		return fmt.Errorf("%s: %w", c.from("addr_policy"), err)
	}
	c.policy = pol
	if len(c.Bootstrap) > maxBootstrap {
		return fmt.Errorf("%s: %d bootstrap addresses, at most %d", c.from("bootstrap"), len(c.Bootstrap), maxBootstrap)
	}
	c.bootstrap = nil
	for _, s := range c.Bootstrap {
		ai, err := parseBootstrap(s)
		if err != nil {
			return fmt.Errorf("%s: %w", c.from("bootstrap"), err)
		}
		if err := pol.Check(ai.Addrs[0]); err != nil {
			return fmt.Errorf("%s: bootstrap %q: %w (%s)", c.from("bootstrap"), s, err, c.from("addr_policy"))
		}
		c.bootstrap = mergeAddrInfo(c.bootstrap, ai)
	}
	if c.DataDir == "" {
		return fmt.Errorf("%s: no data directory (and no home directory to default to): set --data-dir", c.from("data_dir"))
	}
	if err := checkToken(c.Token); err != nil {
		return fmt.Errorf("%s: %w", c.from("token"), err)
	}
	if c.API != apiOff {
		if err := checkAPIBind(c.API, c.Token); err != nil {
			return fmt.Errorf("%s: %w", c.from("api"), err)
		}
	} else if c.Pprof {
		return fmt.Errorf("%s: the profiles are served on the HTTP API, which %s turns off", c.from("pprof"), c.from("api"))
	}
	if err := checkProtocolPrefix(c.ProtocolPrefix); err != nil {
		return fmt.Errorf("%s: %w", c.from("protocol_prefix"), err)
	}
	lvl, err := parseLogLevel(c.LogLevel)
	if err != nil {
		return fmt.Errorf("%s: %w", c.from("log_level"), err)
	}
	c.level = lvl
	if c.SaveInterval < minSaveEvery || c.SaveInterval > maxSaveEvery {
		return fmt.Errorf("%s: %v, want %v to %v", c.from("save_interval"), c.SaveInterval, minSaveEvery, maxSaveEvery)
	}
	if c.ConnsLow < 1 || c.ConnsLow > maxConns {
		return fmt.Errorf("%s: %d, want 1 to %d", c.from("conns_low"), c.ConnsLow, maxConns)
	}
	if c.ConnsHigh < c.ConnsLow || c.ConnsHigh > maxConns {
		return fmt.Errorf("%s: %d, want %d (conns_low) to %d", c.from("conns_high"), c.ConnsHigh, c.ConnsLow, maxConns)
	}
	for _, k := range []string{"store_capacity", "owner_quota", "route_cache"} {
		v := map[string]int64{"store_capacity": c.StoreCapacity, "owner_quota": c.OwnerQuota, "route_cache": c.RouteCache}[k]
		if v < 0 || v > maxStoreBytes {
			return fmt.Errorf("%s: %d bytes, want 0 (no limit) to %d", c.from(k), v, int64(maxStoreBytes))
		}
	}
	return c.validateCert()
}

// validateCert checks that the certificate settings come together: a
// certificate is checked against an authority and a network, and these
// mean nothing without one. The files are read by startDaemon.
func (c *nodeConfig) validateCert() error {
	keys := []string{"cert", "ca_pub", "network"}
	vals := map[string]string{"cert": c.Cert, "ca_pub": c.CAPub, "network": c.Network}
	var given, missing []string
	for _, k := range keys {
		if vals[k] != "" {
			given = append(given, c.from(k))
		} else {
			missing = append(missing, settings[k].flag)
		}
	}
	switch {
	case c.PuzzleBits < 0 || c.PuzzleBits > secure.MaxPuzzleBits:
		return fmt.Errorf("%s: %d, want 0 (off) to %d", c.from("puzzle_bits"), c.PuzzleBits, secure.MaxPuzzleBits)
	case c.PuzzleBits > 0 && c.Secure:
		return fmt.Errorf("%s: the puzzle is open mode's, and %s is certificate mode: choose one", c.from("puzzle_bits"), c.from("secure"))
	}
	if len(given) == 0 && c.Secure {
		return fmt.Errorf("%s: certificate mode needs --cert, --ca-pub and --network", c.from("secure"))
	}
	if len(given) == 0 {
		return nil
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s: set without %s; --cert, --ca-pub and --network go together", strings.Join(given, ", "), strings.Join(missing, " and "))
	}
	if err := secure.CheckNetworkName(c.Network); err != nil {
		return fmt.Errorf("%s: %w", c.from("network"), err)
	}
	return nil
}

// checkListenAddr accepts a multiaddr for the TCP or QUIC transport.
func checkListenAddr(s string) error {
	_, err := transportAddr("listen", "/ip4|ip6/HOST", s)
	return err
}

// transportAddr parses a kind ("listen", "announce") of address: a
// multiaddr for the TCP or QUIC transport, without /p2p/. host says what
// may come before the port in the error.
func transportAddr(kind, host, s string) (ma.Multiaddr, error) {
	a, err := ma.NewMultiaddr(s)
	if err != nil {
		return nil, fmt.Errorf("bad multiaddr %q: %v", s, err)
	}
	if _, err := a.ValueForProtocol(ma.P_P2P); err == nil {
		return nil, fmt.Errorf("%s address %q must not name a peer (/p2p/...)", kind, s)
	}
	_, tcpErr := a.ValueForProtocol(ma.P_TCP)
	_, quicErr := a.ValueForProtocol(ma.P_QUIC_V1)
	if tcpErr != nil && quicErr != nil {
		return nil, fmt.Errorf("%s address %q: unsupported transport, want %s/tcp/PORT or %s/udp/PORT/quic-v1", kind, s, host, host)
	}
	return a, nil
}

// checkAnnounceAddr accepts an address others can dial: a listen address
// (checkListenAddr) or a DNS name with a TCP or QUIC port, neither an
// unspecified IP (0.0.0.0, ::) nor port 0.
func checkAnnounceAddr(s string) error {
	a, err := transportAddr("announce", "/ip4|ip6|dns/HOST", s)
	if err != nil {
		return err
	}
	port, err := a.ValueForProtocol(ma.P_TCP)
	if err != nil {
		port, _ = a.ValueForProtocol(ma.P_UDP) // QUIC, checked above
	}
	if port == "0" {
		return fmt.Errorf("announce address %q: port 0 cannot be dialled; give the port others reach", s)
	}
	if manet.IsIPUnspecified(a) {
		return fmt.Errorf("announce address %q: an unspecified IP cannot be dialled; give the address others reach", s)
	}
	return nil
}

// parseBootstrap reads a bootstrap multiaddr, which must end in /p2p/ID
// with the peer ID of a pastry node (an Ed25519 key), after an address.
func parseBootstrap(s string) (peer.AddrInfo, error) {
	a, err := ma.NewMultiaddr(s)
	if err != nil {
		return peer.AddrInfo{}, fmt.Errorf("bad multiaddr %q: %v", s, err)
	}
	ai, err := peer.AddrInfoFromP2pAddr(a)
	if err != nil {
		return peer.AddrInfo{}, fmt.Errorf("bootstrap address %q: %v; want /ip4/HOST/tcp/PORT/p2p/PEERID", s, err)
	}
	if len(ai.Addrs) == 0 {
		return peer.AddrInfo{}, fmt.Errorf("bootstrap address %q has a peer ID but no address; want /ip4/HOST/tcp/PORT/p2p/PEERID", s)
	}
	if last := ai.Addrs[0][len(ai.Addrs[0])-1]; last.Code() == ma.P_P2P {
		return peer.AddrInfo{}, fmt.Errorf("bootstrap address %q names two peers; want /ip4/HOST/tcp/PORT/p2p/PEERID", s)
	}
	if _, err := secure.NodeIDFromPeer(ai.ID); err != nil {
		return peer.AddrInfo{}, fmt.Errorf("bootstrap address %q: not a pastry node's peer ID (%v); want the peer ID of an Ed25519 key, 12D3KooW...", s, err)
	}
	return *ai, nil
}

// mergeAddrInfo appends ai to list, or its addresses to the entry with the
// same peer, keeping the first appearance's order.
func mergeAddrInfo(list []peer.AddrInfo, ai peer.AddrInfo) []peer.AddrInfo {
	for i := range list {
		if list[i].ID == ai.ID {
			list[i].Addrs = append(list[i].Addrs, ai.Addrs...)
			return list
		}
	}
	return append(list, ai)
}

// checkToken bounds an API token: empty (none) or 16 to 256 printable,
// non-space ASCII characters.
func checkToken(t string) error {
	if t == "" {
		return nil
	}
	if len(t) < minTokenLen || len(t) > maxTokenLen {
		return fmt.Errorf("token is %d characters, want %d to %d (e.g. openssl rand -hex 16)", len(t), minTokenLen, maxTokenLen)
	}
	for _, r := range t {
		if r <= ' ' || r > '~' {
			return errors.New("token must be printable ASCII without spaces")
		}
	}
	return nil
}

// checkAPIBind checks an API listen address host:port. A loopback address
// (127.0.0.0/8, ::1 or "localhost") needs no token; any other address,
// including an empty host (all interfaces), requires one, since the API
// would be reachable from the network.
func checkAPIBind(addr, token string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("API address %q: %v; want HOST:PORT such as %s, or %q", addr, err, defaultAPI, apiOff)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("API address %q: port %q, want 0 to 65535", addr, port)
	}
	if !isLoopbackHost(host) && token == "" {
		return fmt.Errorf("API address %q is reachable from the network: set a token with --token (or PASTRY_TOKEN), or bind 127.0.0.1", addr)
	}
	return nil
}

// isLoopbackHost reports whether host names this machine only.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkProtocolPrefix accepts "" or /a/b without a trailing slash or
// spaces, at most 64 bytes.
func checkProtocolPrefix(p string) error {
	if p == "" {
		return nil
	}
	if len(p) > maxPrefixLen || !strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") {
		return fmt.Errorf("protocol prefix %q: want /NAME (starting with '/', not ending with one, at most %d bytes)", p, maxPrefixLen)
	}
	for _, r := range p {
		if r <= ' ' || r > '~' {
			return fmt.Errorf("protocol prefix %q: printable ASCII without spaces only", p)
		}
	}
	return nil
}

// parseLogLevel accepts the four level names, in any case. (Not
// slog.Level.UnmarshalText: its "error+N" can overflow to below debug.)
func parseLogLevel(s string) (slog.Level, error) {
	for _, l := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError} {
		if strings.EqualFold(s, l.String()) {
			return l, nil
		}
	}
	return 0, fmt.Errorf("log level %q: want debug, info, warn or error", s)
}

// newLogger writes text logs at level to w.
func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}
