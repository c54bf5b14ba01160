package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/pastrynet/pastry"
	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
)

// apiConfig configures a node's HTTP API.
type apiConfig struct {
	// Token, when set, must be presented by every request as
	// "Authorization: Bearer TOKEN" (checkAPIBind requires one for
	// non-loopback addresses).
	Token string
	// Protocol is the libp2p protocol ID the node speaks.
	Protocol string
	// LookupTimeout bounds /v1/route when the request gives no timeout=
	// (which may set any duration up to 30 s). Default 10 s.
	LookupTimeout time.Duration
	// Pprof serves the Go runtime's profiles under /debug/pprof/
	// (net/http/pprof), behind the same token as the rest of the API.
	// They are the process's: in a devnet one node's API has them.
	Pprof  bool
	Logger *slog.Logger
}

// Limits of the HTTP server. Every endpoint is a GET with a short query,
// so requests are tiny and responses bounded by the node's state.
const (
	apiReadHeaderTimeout = 5 * time.Second
	apiReadTimeout       = 10 * time.Second
	apiWriteTimeout      = 40 * time.Second // above the longest lookup
	apiIdleTimeout       = 60 * time.Second
	apiMaxHeaderBytes    = 16 << 10
	apiMaxBody           = 1 << 10
	apiMaxLookups        = 64 // concurrent /v1/route requests
	defaultLookupTimeout = 10 * time.Second
	maxLookupTimeout     = 30 * time.Second
)

// apiServer is one node's HTTP API and its Prometheus registry: a devnet
// runs one per node, each with its own registry and meter provider, so
// nothing is shared between nodes (nor with prometheus.DefaultRegisterer).
type apiServer struct {
	node    *pastry.Node
	cfg     apiConfig
	log     *slog.Logger
	start   time.Time
	version string        // versionInfo.Short, for /v1/status
	lookups chan struct{} // semaphore for /v1/route
	streams chan struct{} // semaphore for /v1/topics/NAME/events

	reg      *prometheus.Registry
	mp       *sdkmetric.MeterProvider
	metrics  metric.Registration
	handler  http.Handler
	srv      *http.Server
	ln       net.Listener
	serveErr chan error
}

// newAPIServer builds the API of node n (not yet listening; see Listen, or
// use Handler in tests).
func newAPIServer(n *pastry.Node, cfg apiConfig) (*apiServer, error) {
	if cfg.LookupTimeout <= 0 {
		cfg.LookupTimeout = defaultLookupTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	a := &apiServer{
		node: n, cfg: cfg, log: cfg.Logger.With("component", "api"), start: time.Now(), version: readVersion().Short(),
		lookups: make(chan struct{}, apiMaxLookups),
		streams: make(chan struct{}, apiMaxStreams),
		reg:     prometheus.NewRegistry(),
	}
	// The Go runtime's and the process's own figures (go_goroutines,
	// process_resident_memory_bytes, process_open_fds, ...), as every
	// Prometheus-instrumented Go daemon has them. They are process-wide: in
	// a devnet every node's API reports the same ones.
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	exp, err := otelprom.New(otelprom.WithRegisterer(a.reg), otelprom.WithoutTargetInfo(), otelprom.WithoutScopeInfo())
	if err != nil {
		return nil, fmt.Errorf("metrics exporter: %w", err)
	}
	a.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	a.metrics, err = n.RegisterMetrics(a.mp.Meter(pastry.MetricsScope))
	if err != nil {
		a.mp.Shutdown(context.Background())
		return nil, err
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/v1/status", a.handleStatus)
	mux.HandleFunc("/v1/health", a.handleHealth)
	mux.HandleFunc("/v1/route", a.handleRoute)
	mux.HandleFunc("/v1/table", a.handleTable)
	mux.HandleFunc("/v1/topics", a.handleTopics)
	mux.HandleFunc(topicsPathPrefix, a.handleTopics)
	mux.HandleFunc(recordsPrefix, a.handleRecords)
	mux.HandleFunc(objectsPath, a.handleObjects)
	mux.HandleFunc(keysPrefix, a.handleKeys)
	mux.Handle("/metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	}))
	endpoints := "/v1/status, /v1/health, /v1/route?key=HEX, /v1/table, /v1/topics, POST /v1/topics/NAME, /v1/topics/NAME/events, GET|PUT|DELETE /v1/records/NAME, POST /v1/objects, /v1/keys/KEY, /metrics"
	if cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index) // heap, goroutine, allocs, block, mutex, ...
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile) // ?seconds=N, below apiWriteTimeout
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		endpoints += ", /debug/pprof/"
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint %q: see %s", r.URL.Path, endpoints)
	})
	a.handler = a.guard(mux)
	return a, nil
}

// Handler is the API with its checks (method, token, body size, panics).
func (a *apiServer) Handler() http.Handler { return a.handler }

// Listen binds addr and serves in the background. A port in use gives an
// error saying so.
func (a *apiServer) Listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("HTTP API %s: the port is in use (another pastry node or devnet?): choose another address: %w", addr, err)
		}
		return fmt.Errorf("HTTP API %s: %w", addr, err)
	}
	a.ln = ln
	a.srv = &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: apiReadHeaderTimeout,
		ReadTimeout:       apiReadTimeout,
		WriteTimeout:      apiWriteTimeout,
		IdleTimeout:       apiIdleTimeout,
		MaxHeaderBytes:    apiMaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelDebug),
	}
	a.serveErr = make(chan error, 1)
	go func() { a.serveErr <- a.srv.Serve(ln) }()
	return nil
}

// Addr is the address the API listens on ("" before Listen).
func (a *apiServer) Addr() string {
	if a.ln == nil {
		return ""
	}
	return a.ln.Addr().String()
}

// Close stops serving (letting requests in flight finish until ctx ends)
// and unregisters the node's metrics. Close it before the node.
func (a *apiServer) Close(ctx context.Context) error {
	var errs []error
	if a.srv != nil {
		if err := a.srv.Shutdown(ctx); err != nil {
			a.srv.Close()
			errs = append(errs, err)
		}
		if err := <-a.serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	if err := a.metrics.Unregister(); err != nil {
		errs = append(errs, err)
	}
	if err := a.mp.Shutdown(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// guard wraps every endpoint: panics become 500s, only GET and HEAD are
// served (and POST to publish to a topic), the token is checked, bodies
// are bounded.
func (a *apiServer) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				a.log.Error("API handler panic", "path", r.URL.Path, "panic", p)
				writeError(w, http.StatusInternalServerError, "internal error")
			}
		}()
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if !authorized(r, a.cfg.Token) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="pastry"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token: send Authorization: Bearer TOKEN")
			return
		}
		write, limit := writes(r)
		if r.Method != http.MethodGet && r.Method != http.MethodHead && !write {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, "method %s not allowed: the API is read-only but for publishing (POST /v1/topics/NAME) and records (PUT or DELETE /v1/records/NAME, POST /v1/objects), use GET", r.Method)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		next.ServeHTTP(w, r)
	})
}

// authorized checks the bearer token in constant time; with no token
// configured every request is.
func authorized(r *http.Request, token string) bool {
	if token == "" {
		return true
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}

// The API's JSON documents (docs/http-api.md has examples).
type (
	handleJSON struct {
		NodeID string `json:"node_id"`
		PeerID string `json:"peer_id"`
	}
	// leafSetJSON is the leaf set by side, each closest first: left holds
	// the counter-clockwise neighbours (smaller ids), right the clockwise.
	leafSetJSON struct {
		Left  []handleJSON `json:"left"`
		Right []handleJSON `json:"right"`
	}
	healthJSON struct {
		Status string `json:"status"`
	}
	statusJSON struct {
		NodeID              string      `json:"node_id"`
		PeerID              string      `json:"peer_id"`
		Addrs               []string    `json:"addrs"`
		Protocol            string      `json:"protocol"`
		Status              string      `json:"status"`
		LeafSet             leafSetJSON `json:"leaf_set"`
		RoutingTableEntries int         `json:"routing_table_entries"`
		NeighborhoodSize    int         `json:"neighborhood_set_size"`
		NetworkSizeEstimate float64     `json:"network_size_estimate"`
		UptimeS             float64     `json:"uptime_s"`
		Version             string      `json:"version"` // versionInfo.Short
	}
	routeJSON struct {
		Key      string   `json:"key"`
		Root     string   `json:"root"`
		RootPeer string   `json:"root_peer_id"`
		Hops     int      `json:"hops"`
		Path     []string `json:"path"`
		// AnswerHops: the answer's hops back (1: sent straight; more:
		// routed, the root having no connection to the origin).
		AnswerHops int     `json:"answer_hops"`
		LatencyMS  float64 `json:"latency_ms"`
		// Secure lookups (?secure=1) only.
		Secure     bool `json:"secure,omitempty"`
		TestPassed bool `json:"failure_test_passed,omitempty"`
		Redundant  bool `json:"redundant,omitempty"`
		Rounds     int  `json:"redundant_rounds,omitempty"`
		Claims     int  `json:"claims,omitempty"`
	}
	entryJSON struct {
		Column string `json:"column"` // the entry's digit at this row, in hex
		NodeID string `json:"node_id"`
		PeerID string `json:"peer_id"`
	}
	rowJSON struct {
		Row     int         `json:"row"`
		Entries []entryJSON `json:"entries"`
	}
	tableJSON struct {
		NodeID          string       `json:"node_id"`
		B               int          `json:"b"`
		Rows            []rowJSON    `json:"rows"`
		LeafSet         leafSetJSON  `json:"leaf_set"`
		NeighborhoodSet []handleJSON `json:"neighborhood_set"`
	}
	errorJSON struct {
		Error string `json:"error"`
	}
)

func toHandles(hs []id.Handle) []handleJSON {
	out := make([]handleJSON, len(hs))
	for i, h := range hs {
		out[i] = handleJSON{NodeID: h.ID.String(), PeerID: peer.ID(h.Addr).String()}
	}
	return out
}

func (a *apiServer) handleStatus(w http.ResponseWriter, r *http.Request) {
	if !exactQuery(w, r) {
		return
	}
	inf := a.node.Info()
	st := statusJSON{
		NodeID: inf.NodeID.String(), PeerID: inf.PeerID.String(), Addrs: []string{},
		Protocol: a.cfg.Protocol, Status: inf.Status.String(),
		LeafSet:             leafSetJSON{Left: toHandles(inf.Left), Right: toHandles(inf.Right)},
		RoutingTableEntries: inf.TableEntries,
		NeighborhoodSize:    len(inf.Neighbors),
		NetworkSizeEstimate: inf.NetworkSize,
		UptimeS:             time.Since(a.start).Round(time.Millisecond).Seconds(),
		Version:             a.version,
	}
	for _, ad := range inf.Addrs {
		st.Addrs = append(st.Addrs, ad.String())
	}
	writeJSON(w, http.StatusOK, st)
}

// handleHealth answers 200 while the node is joined and can route, 503
// otherwise, for readiness checks and scripts that wait for a node:
// {"status": "joined"}.
func (a *apiServer) handleHealth(w http.ResponseWriter, r *http.Request) {
	if !exactQuery(w, r) {
		return
	}
	st := a.node.Status()
	code := http.StatusOK
	if st != core.StatusJoined {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, healthJSON{Status: st.String()})
}

func (a *apiServer) handleTable(w http.ResponseWriter, r *http.Request) {
	if !exactQuery(w, r) {
		return
	}
	inf := a.node.Info()
	t := tableJSON{
		NodeID: inf.NodeID.String(), B: a.node.Config().B, Rows: []rowJSON{},
		LeafSet:         leafSetJSON{Left: toHandles(inf.Left), Right: toHandles(inf.Right)},
		NeighborhoodSet: toHandles(inf.Neighbors),
	}
	for r, row := range inf.Rows {
		rj := rowJSON{Row: r, Entries: []entryJSON{}}
		for _, h := range row {
			rj.Entries = append(rj.Entries, entryJSON{
				Column: fmt.Sprintf("%x", h.ID.Digit(r, a.node.Config().B)),
				NodeID: h.ID.String(), PeerID: peer.ID(h.Addr).String(),
			})
		}
		t.Rows = append(t.Rows, rj)
	}
	writeJSON(w, http.StatusOK, t)
}

func (a *apiServer) handleRoute(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for k := range q {
		if k != "key" && k != "timeout" && k != "secure" && k != "redundant" {
			writeError(w, http.StatusBadRequest, "unknown query parameter %q: want key=HEX and optionally timeout=DURATION, secure=1, redundant=1", k)
			return
		}
	}
	var lo pastry.LookupOptions
	for _, f := range []struct {
		name string
		v    *bool
	}{{"secure", &lo.Secure}, {"redundant", &lo.Redundant}} {
		if vs, ok := q[f.name]; ok {
			if len(vs) != 1 || (vs[0] != "1" && vs[0] != "true" && vs[0] != "0" && vs[0] != "false") {
				writeError(w, http.StatusBadRequest, "%s=%q: want %s=1 (or 0)", f.name, strings.Join(vs, ","), f.name)
				return
			}
			*f.v = vs[0] == "1" || vs[0] == "true"
		}
	}
	if lo.Redundant && !lo.Secure {
		writeError(w, http.StatusBadRequest, "redundant=1 needs secure=1: redundant routing is part of a secure lookup")
		return
	}
	ks := q["key"]
	if len(ks) != 1 || ks[0] == "" {
		writeError(w, http.StatusBadRequest, "want exactly one key=HEX (%d hex digits)", 2*id.Len)
		return
	}
	key, err := parseKey(ks[0])
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	timeout := a.cfg.LookupTimeout
	if ts := q.Get("timeout"); ts != "" {
		d, err := time.ParseDuration(ts)
		if err != nil || d <= 0 || d > maxLookupTimeout {
			writeError(w, http.StatusBadRequest, "timeout %q: want a duration from 1ms to %v", ts, maxLookupTimeout)
			return
		}
		timeout = min(d, maxLookupTimeout)
	}
	if st := a.node.Status(); st != core.StatusJoined {
		writeError(w, http.StatusServiceUnavailable, "the node is %s, not joined: it cannot route yet", st)
		return
	}
	select {
	case a.lookups <- struct{}{}:
		defer func() { <-a.lookups }()
	default:
		writeError(w, http.StatusTooManyRequests, "too many lookups in flight (%d): retry later", apiMaxLookups)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	res, err := a.node.LookupWith(ctx, key, lo)
	switch {
	case err == nil:
	case errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusGatewayTimeout, "lookup of %s: no answer within %v", key, timeout)
		return
	case errors.Is(err, pastry.ErrClosed):
		writeError(w, http.StatusServiceUnavailable, "the node is shutting down")
		return
	case r.Context().Err() != nil:
		return // the client went away
	default:
		writeError(w, http.StatusServiceUnavailable, "lookup of %s: %v", key, err)
		return
	}
	out := routeJSON{
		Key: key.String(), Root: res.Root.String(), RootPeer: res.RootPeer.String(), Hops: res.Hops, Path: []string{},
		AnswerHops: res.AnswerHops, LatencyMS: float64(res.Latency.Microseconds()) / 1000,
		Secure: res.Secure, TestPassed: res.TestPassed, Redundant: res.Redundant, Rounds: res.Rounds, Claims: res.Claims,
	}
	for _, p := range res.Path {
		out.Path = append(out.Path, p.String())
	}
	writeJSON(w, http.StatusOK, out)
}

// parseKey reads a 128-bit key from 32 hex digits, with a message fit for
// users.
func parseKey(s string) (id.ID, error) {
	if len(s) > 256 {
		s = s[:256] + "..."
	}
	k, err := id.Parse(s)
	if err != nil {
		return id.ID{}, fmt.Errorf("bad key %q: want %d hexadecimal digits (128 bits)", s, 2*id.Len)
	}
	return k, nil
}

// exactQuery refuses query parameters on endpoints that take none.
func exactQuery(w http.ResponseWriter, r *http.Request) bool {
	if r.URL.RawQuery != "" {
		writeError(w, http.StatusBadRequest, "%s takes no query parameters", r.URL.Path)
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, errorJSON{Error: fmt.Sprintf(format, args...)})
}
