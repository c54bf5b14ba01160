package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
)

// startTestNet starts n joined nodes on loopback (TCP) with their APIs on
// free ports, and closes them when the test ends, checking that no
// goroutines are left behind.
func startTestNet(t *testing.T, n int) *devnet {
	t.Helper()
	checkLeaks(t)
	dn := &devnet{
		cfg: devnetConfig{n: n, transport: "tcp", batch: 1, settle: 15 * time.Second, heartbeat: 500 * time.Millisecond},
		log: newLogger(io.Discard, 0), progress: io.Discard,
	}
	t.Cleanup(func() { dn.close() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := dn.start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := dn.join(ctx); err != nil {
		t.Fatal(err)
	}
	if wrong := dn.settle(ctx); wrong > 0 {
		t.Fatalf("%d leaf sets still wrong", wrong)
	}
	return dn
}

// checkLeaks fails the test if, once its cleanups have run, the number of
// goroutines does not come back near where it was (libp2p keeps a few
// process-wide ones after the first host).
func checkLeaks(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for {
			now := runtime.NumGoroutine()
			if now <= before+8 {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("goroutines: %d before, %d after closing everything:\n%s", before, now, buf)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// apiGet fetches path from base and decodes the JSON into out (if not nil);
// it returns the status code and the body.
func apiGet(t *testing.T, base, path, token string, out any) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+base+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); path != "/metrics" && !strings.HasPrefix(path, "/debug/pprof/") && ct != "application/json" {
		t.Errorf("%s: Content-Type %q", path, ct)
	}
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("%s: %v\n%s", path, err, body)
		}
	}
	return resp.StatusCode, body
}

func TestAPIAgainstRealNodes(t *testing.T) {
	const n = 4
	dn := startTestNet(t, n)
	var ids []id.ID
	for _, d := range dn.nodes {
		ids = append(ids, d.node.ID())
	}
	slices.SortFunc(ids, func(a, b id.ID) int { return a.Cmp(b) })

	t.Run("status", func(t *testing.T) {
		for i, d := range dn.nodes {
			var st statusJSON
			if code, body := apiGet(t, d.api.Addr(), "/v1/status", "", &st); code != 200 {
				t.Fatalf("node %d: %d %s", i, code, body)
			}
			if st.NodeID != d.node.ID().String() || st.PeerID != d.host.ID().String() || st.Status != "joined" ||
				st.Protocol != "/pastry/1.0.0" || len(st.Addrs) == 0 || !strings.HasPrefix(st.Addrs[0], "/ip4/127.0.0.1/tcp/") {
				t.Errorf("node %d status: %+v", i, st)
			}
			if len(st.LeafSet.Left) != n-1 || len(st.LeafSet.Right) != n-1 || st.NetworkSizeEstimate != n {
				t.Errorf("node %d: leaf set %d+%d, estimate %v; want %d each side and %d", i,
					len(st.LeafSet.Left), len(st.LeafSet.Right), st.NetworkSizeEstimate, n-1, n)
			}
			at, _ := slices.BinarySearchFunc(ids, d.node.ID(), func(a, b id.ID) int { return a.Cmp(b) })
			if want := ids[(at+1)%n].String(); st.LeafSet.Right[0].NodeID != want {
				t.Errorf("node %d: right neighbour %s, want %s", i, st.LeafSet.Right[0].NodeID, want)
			}
			if want := ids[(at+n-1)%n].String(); st.LeafSet.Left[0].NodeID != want {
				t.Errorf("node %d: left neighbour %s, want %s", i, st.LeafSet.Left[0].NodeID, want)
			}
		}
	})

	t.Run("route ends at the closest node", func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		for range 40 {
			key := id.Random(r)
			from := dn.nodes[r.IntN(n)]
			var rt routeJSON
			code, body := apiGet(t, from.api.Addr(), "/v1/route?key="+key.String(), "", &rt)
			if code != 200 {
				t.Fatalf("route %s: %d %s", key, code, body)
			}
			want := ids[0]
			for _, x := range ids[1:] {
				if id.Closer(key, x, want) {
					want = x
				}
			}
			if rt.Key != key.String() || rt.Root != want.String() {
				t.Fatalf("route %s from %s ended at %s, want %s", key, from.node.ID(), rt.Root, want)
			}
			for _, d := range dn.nodes {
				if d.node.ID() == want && rt.RootPeer != d.host.ID().String() {
					t.Fatalf("route %s: root peer %s, the root is %s", key, rt.RootPeer, d.host.ID())
				}
			}
			if len(rt.Path) != rt.Hops+1 || rt.Path[0] != from.node.ID().String() || rt.Path[len(rt.Path)-1] != rt.Root || rt.LatencyMS <= 0 {
				t.Fatalf("route %s: %+v", key, rt)
			}
		}
	})

	t.Run("secure route, redundant on request, ends at the closest node", func(t *testing.T) {
		// Asked for, redundant routing runs; otherwise it runs when the
		// failure test fails, which in a network this small it may.
		r := rand.New(rand.NewPCG(3, 4))
		for i := range 4 {
			key := id.Random(r)
			q := "&secure=1"
			if i%2 == 1 {
				q += "&redundant=1"
			}
			var rt routeJSON
			code, body := apiGet(t, dn.nodes[r.IntN(n)].api.Addr(), "/v1/route?key="+key.String()+q, "", &rt)
			if code != 200 {
				t.Fatalf("secure route %s: %d %s", key, code, body)
			}
			want := ids[0]
			for _, x := range ids[1:] {
				if id.Closer(key, x, want) {
					want = x
				}
			}
			if !rt.Secure || rt.Root != want.String() || i%2 == 1 && !rt.Redundant || rt.Redundant && (rt.Rounds < 1 || rt.Claims < 1) {
				t.Fatalf("secure route %s%s: %s, want root %s", key, q, body, want)
			}
		}
	})

	t.Run("table", func(t *testing.T) {
		d := dn.nodes[0]
		var tb tableJSON
		if code, body := apiGet(t, d.api.Addr(), "/v1/table", "", &tb); code != 200 {
			t.Fatalf("%d %s", code, body)
		}
		if tb.NodeID != d.node.ID().String() || tb.B != 4 || len(tb.LeafSet.Left) != n-1 || len(tb.LeafSet.Right) != n-1 {
			t.Fatalf("table: %+v", tb)
		}
		entries := 0
		for _, row := range tb.Rows {
			for _, e := range row.Entries {
				entries++
				x, err := id.Parse(e.NodeID)
				if err != nil {
					t.Fatal(err)
				}
				// Row r holds nodes sharing r digits with us whose digit r is the column.
				if id.SharedPrefixLen(x, d.node.ID(), 4) != row.Row || e.Column != string("0123456789abcdef"[x.Digit(row.Row, 4)]) {
					t.Errorf("row %d column %s holds %s", row.Row, e.Column, e.NodeID)
				}
			}
		}
		if entries != d.node.Info().TableEntries || entries == 0 {
			t.Errorf("%d table entries in JSON, node has %d", entries, d.node.Info().TableEntries)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		d := dn.nodes[1]
		if code, body := apiGet(t, d.api.Addr(), "/v1/route?key="+strings.Repeat("ab", 16), "", nil); code != 200 { // a lookup to time
			t.Fatalf("route: %d %s", code, body)
		}
		code, body := apiGet(t, d.api.Addr(), "/metrics", "", nil)
		if code != 200 {
			t.Fatalf("%d %s", code, body)
		}
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
		if err != nil {
			t.Fatalf("parse: %v\n%s", err, body)
		}
		for _, name := range []string{
			"pastry_routing_table_row_entries", "pastry_routing_table_entries", "pastry_leaf_set_size",
			"pastry_neighborhood_set_size", "pastry_network_size_estimate", "pastry_node_joined",
			"pastry_messages_sent_total", "pastry_messages_received_total",
			"pastry_transport_sent_bytes_total", "pastry_transport_received_bytes_total",
			"pastry_route_delivered_total", "pastry_route_forwarded_total", "pastry_route_hop_timeouts_total",
			"pastry_route_hops_unsent_total", "pastry_route_held_total",
			"pastry_route_reroutes_total", "pastry_route_dropped_total", "pastry_transport_rejected_total",
			"pastry_transport_dropped_total", "pastry_transport_addrs_refused_total", "pastry_transport_write_retries_total",
			"pastry_transport_streams_total", "pastry_transport_stream_resets_total", "pastry_transport_pings_total", "pastry_transport_pongs_total",
			"pastry_libp2p_measure_conns_closed_total", "pastry_libp2p_measures_throttled_total", "pastry_core_rejected_total", "pastry_inbox_drops_total",
			"pastry_inbox_rate_limited_total", "pastry_transport_addrs_throttled_total", "pastry_transport_sends_throttled_total",
			"pastry_libp2p_connections", "pastry_libp2p_peers", "pastry_route_window", "pastry_route_queued",
			"go_goroutines", "process_resident_memory_bytes", "process_open_fds", "pastry_lookup_duration_seconds",
			"pastry_multicast_topics", "pastry_multicast_children", "pastry_multicast_tree_depth", "pastry_multicast_root_replicas",
			"pastry_multicast_delivered_total", "pastry_multicast_forwarded_total", "pastry_multicast_published_total",
			"pastry_multicast_repairs_total", "pastry_multicast_heartbeats_total", "pastry_multicast_duplicates_total",
			"pastry_multicast_takeovers_total", "pastry_multicast_redirects_total", "pastry_multicast_refused_total",
			"pastry_store_records", "pastry_store_bytes", "pastry_records_stored_total", "pastry_records_refused_total",
			"pastry_records_quorum_failures_total", "pastry_records_replicas_moved_total", "pastry_records_read_repairs_total",
			"pastry_records_sync_rounds_total", "pastry_records_handed_off_total", "pastry_records_rate_limited_total",
			"pastry_records_full_total", "pastry_records_over_quota_total", "pastry_records_diverted_total", "pastry_records_cache_hits_total",
		} {
			if fams[name] == nil {
				t.Errorf("metric %s missing", name)
			}
		}
		if f := fams["pastry_lookup_duration_seconds"]; f != nil && (f.GetType() != dto.MetricType_HISTOGRAM || f.Metric[0].GetHistogram().GetSampleCount() < 1) {
			t.Errorf("lookup durations: %v", f)
		}
		value := func(name, label, lv string) float64 {
			f := fams[name]
			if f == nil {
				return -1
			}
			sum := 0.0
			for _, m := range f.Metric {
				ok := label == ""
				for _, l := range m.Label {
					ok = ok || l.GetName() == label && l.GetValue() == lv
				}
				if !ok {
					continue
				}
				switch {
				case m.Gauge != nil:
					sum += m.Gauge.GetValue()
				case m.Counter != nil:
					sum += m.Counter.GetValue()
				}
			}
			return sum
		}
		if v := value("pastry_leaf_set_size", "side", "left"); v != n-1 {
			t.Errorf("leaf set left = %v, want %d", v, n-1)
		}
		if v := value("pastry_network_size_estimate", "", ""); v != n {
			t.Errorf("network size = %v", v)
		}
		if v := value("pastry_node_joined", "", ""); v != 1 {
			t.Errorf("joined = %v", v)
		}
		// Every node of this small devnet talks to every other.
		if p, c := value("pastry_libp2p_peers", "", ""), value("pastry_libp2p_connections", "", ""); p < 1 || p > n-1 || c < p {
			t.Errorf("connected to %v peers over %v connections, in a devnet of %d", p, c, n)
		}
		if v := value("pastry_route_window", "", ""); v < 4 {
			t.Errorf("route window = %v, want at least the floor 4", v)
		}
		if v := value("go_goroutines", "", ""); v < float64(n) {
			t.Errorf("go_goroutines = %v for %d nodes", v, n)
		}
		if v := value("pastry_messages_received_total", "type", "announce"); v < 1 {
			t.Errorf("announcements received = %v", v)
		}
		st, _ := d.node.Stats(context.Background())
		if out, in := value("pastry_transport_streams_total", "direction", "outbound"), value("pastry_transport_streams_total", "direction", "inbound"); out < 1 || in < 1 || out > float64(st.Transport.StreamsOpened) {
			t.Errorf("streams opened %v, accepted %v (the node's counter: %d opened)", out, in, st.Transport.StreamsOpened)
		}
		if v := value("pastry_transport_pongs_total", "late", "false"); v < 1 || v > float64(st.Transport.PongsReceived) { // read after the scrape
			t.Errorf("pongs on time %v (the node's counter: %d)", v, st.Transport.PongsReceived)
		}
		if v := value("pastry_routing_table_entries", "", ""); v != float64(d.node.Info().TableEntries) {
			t.Errorf("table entries = %v", v)
		}
		if v := value("pastry_transport_rejected_total", "reason", "bad-frame"); v != 0 {
			t.Errorf("rejected bad frames = %v", v)
		}
		// A lookup from this node is answered back here: its own id at once
		// (a routed message, 0 hops), the other's by its root, straight (a
		// direct message) or routed.
		delivered := func() float64 {
			return value("pastry_route_delivered_total", "", "") + value("pastry_direct_delivered_total", "", "")
		}
		before := delivered()
		apiGet(t, d.api.Addr(), "/v1/route?key="+d.node.ID().String(), "", nil) // own id: 0 hops
		apiGet(t, d.api.Addr(), "/v1/route?key="+ids[0].String(), "", nil)
		_, body = apiGet(t, d.api.Addr(), "/metrics", "", nil)
		fams, err = p.TextToMetricFamilies(strings.NewReader(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		if after := delivered(); after < before+2 {
			t.Errorf("delivered %v -> %v after two lookups", before, after)
		}
	})

	t.Run("bad requests", func(t *testing.T) {
		base := dn.nodes[0].api.Addr()
		for _, tc := range []struct {
			path string
			code int
			msg  string
		}{
			{"/v1/route", 400, "key=HEX"},
			{"/v1/route?key=xyz", 400, "bad key"},
			{"/v1/route?key=" + strings.Repeat("0", 31) + "g", 400, "32 hexadecimal digits"},
			{"/v1/route?key=" + strings.Repeat("ab", 1000), 400, "bad key"},
			{"/v1/route?key=" + strings.Repeat("0", 32) + "&key=" + strings.Repeat("1", 32), 400, "exactly one"},
			{"/v1/route?key=" + strings.Repeat("0", 32) + "&timeout=1h", 400, "timeout"},
			{"/v1/route?key=" + strings.Repeat("0", 32) + "&foo=1", 400, "unknown query parameter"},
			{"/v1/route?key=" + strings.Repeat("0", 32) + "&secure=yes", 400, "want secure=1"},
			{"/v1/route?key=" + strings.Repeat("0", 32) + "&redundant=1", 400, "needs secure=1"},
			{"/v1/status?x=1", 400, "no query parameters"},
			{"/v1/nothing", 404, "no such endpoint"},
			{"/" + url.PathEscape("\x00"), 404, "no such endpoint"},
		} {
			code, body := apiGet(t, base, tc.path, "", nil)
			var e errorJSON
			json.Unmarshal(body, &e)
			if code != tc.code || !strings.Contains(e.Error, tc.msg) {
				t.Errorf("GET %s: %d %s, want %d mentioning %q", tc.path[:min(len(tc.path), 60)], code, body, tc.code, tc.msg)
			}
		}
		resp, err := http.Post("http://"+base+"/v1/status", "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("POST: %d %v", resp.StatusCode, resp.Header)
		}
		// A header over the limit is refused by the server, not a panic.
		req, _ := http.NewRequest("GET", "http://"+base+"/v1/status", nil)
		req.Header.Set("X-Big", strings.Repeat("x", 2*apiMaxHeaderBytes))
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
				t.Errorf("huge header: %d", resp.StatusCode)
			}
		}
	})
}

// TestAPIToken checks that a token, once configured, is required on every
// endpoint, and is compared exactly.
func TestAPIToken(t *testing.T) {
	dn := startTestNet(t, 1)
	const token = "s3cret-token-0123456789"
	a, err := newAPIServer(dn.nodes[0].node, apiConfig{Token: token, Logger: newLogger(io.Discard, 0)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	defer func() {
		srv.Close()
		a.Close(context.Background())
	}()
	base := strings.TrimPrefix(srv.URL, "http://")
	for _, path := range []string{"/v1/status", "/v1/table", "/v1/route?key=" + strings.Repeat("0", 32), "/metrics", "/nope"} {
		for _, tok := range []string{"", "wrong-token-0123456789", token + "x", token[:len(token)-1]} {
			if code, _ := apiGet(t, base, path, tok, nil); code != http.StatusUnauthorized {
				t.Errorf("%s with token %q: %d, want 401", path, tok, code)
			}
		}
	}
	if code, body := apiGet(t, base, "/v1/status", token, nil); code != 200 {
		t.Errorf("right token: %d %s", code, body)
	}
	if code, _ := apiGet(t, base, "/metrics", token, nil); code != 200 {
		t.Errorf("metrics with the right token: %d", code)
	}
	r := httptest.NewRequest("GET", "/v1/status", nil)
	r.Header.Set("Authorization", "Basic "+token)
	if authorized(r, token) {
		t.Error("a Basic credential passed as a bearer token")
	}
}

// TestAPIPprof: the Go profiles are served only when configured, and
// behind the token like every endpoint.
func TestAPIPprof(t *testing.T) {
	dn := startTestNet(t, 1)
	const token = "s3cret-token-0123456789"
	for _, on := range []bool{false, true} {
		a, err := newAPIServer(dn.nodes[0].node, apiConfig{Token: token, Pprof: on, Logger: newLogger(io.Discard, 0)})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(a.Handler())
		base := strings.TrimPrefix(srv.URL, "http://")
		code, body := apiGet(t, base, "/debug/pprof/heap?debug=1", token, nil)
		switch {
		case on && (code != 200 || !bytes.HasPrefix(body, []byte("heap profile: "))):
			t.Errorf("pprof on: heap %d %.80q", code, body)
		case !on && code != http.StatusNotFound:
			t.Errorf("pprof off: heap %d, want 404", code)
		}
		if code, _ := apiGet(t, base, "/debug/pprof/goroutine?debug=1", "", nil); code != http.StatusUnauthorized {
			t.Errorf("pprof %v without the token: %d, want 401", on, code)
		}
		_, body = apiGet(t, base, "/nope", token, nil)
		if got := bytes.Contains(body, []byte("/debug/pprof/")); got != on {
			t.Errorf("pprof %v: the 404 lists /debug/pprof/: %v (%s)", on, got, body)
		}
		srv.Close()
		a.Close(context.Background())
	}
}

// TestAPIRouteNotJoined: a node that has not joined answers 503, not a
// hang or a wrong root.
func TestAPIRouteNotJoined(t *testing.T) {
	checkLeaks(t)
	dn := &devnet{cfg: devnetConfig{n: 1, transport: "tcp", heartbeat: time.Second}, log: newLogger(io.Discard, 0), progress: io.Discard}
	t.Cleanup(func() { dn.close() })
	if err := dn.start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := dn.nodes[0].node.Status(); st != core.StatusIdle {
		t.Fatalf("status %s", st)
	}
	code, body := apiGet(t, dn.nodes[0].api.Addr(), "/v1/route?key="+strings.Repeat("0", 32), "", nil)
	if code != http.StatusServiceUnavailable || !strings.Contains(string(body), "idle") {
		t.Fatalf("%d %s", code, body)
	}
	var st statusJSON
	apiGet(t, dn.nodes[0].api.Addr(), "/v1/status", "", &st)
	if st.Status != "idle" || st.LeafSet.Left == nil || st.Addrs == nil {
		t.Fatalf("status of an idle node: %+v", st) // empty lists, not null
	}
	var h healthJSON
	if code, body := apiGet(t, dn.nodes[0].api.Addr(), "/v1/health", "", nil); code != http.StatusServiceUnavailable || json.Unmarshal(body, &h) != nil || h.Status != "idle" {
		t.Fatalf("health of an idle node: %d %s", code, body)
	}
	if err := dn.nodes[0].node.Join(context.Background()); err != nil {
		t.Fatal(err)
	}
	if code, body := apiGet(t, dn.nodes[0].api.Addr(), "/v1/health", "", &h); code != http.StatusOK || h.Status != "joined" {
		t.Fatalf("health of a joined node: %d %s", code, body)
	}
	if code, _ := apiGet(t, dn.nodes[0].api.Addr(), "/v1/health?x=1", "", nil); code != http.StatusBadRequest {
		t.Fatalf("health with a query: %d", code)
	}
}
