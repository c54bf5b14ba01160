package cluster

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pastrynet/pastry/id"
)

// fakeNode answers the API calls the harness makes, from a fixed ring:
// its leaf set is the true one, and a lookup ends at the true root unless
// misroute is set.
type fakeNode struct {
	self     id.ID
	ring     []id.ID // sorted
	token    string
	misroute *atomic.Bool
	records  map[string][]byte
}

func (f *fakeNode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+f.token {
		http.Error(w, `{"error":"token"}`, http.StatusUnauthorized)
		return
	}
	enc := json.NewEncoder(w)
	n := len(f.ring)
	at := slices.IndexFunc(f.ring, func(x id.ID) bool { return x == f.self })
	switch {
	case r.URL.Path == "/v1/status":
		var st Status
		st.NodeID, st.PeerID, st.Status = f.self.String(), "peer-"+f.self.Short(), "joined"
		for j := 1; j <= min(8, n-1); j++ {
			st.LeafSet.Right = append(st.LeafSet.Right, Handle{NodeID: f.ring[(at+j)%n].String()})
			st.LeafSet.Left = append(st.LeafSet.Left, Handle{NodeID: f.ring[(at-j+n)%n].String()})
		}
		enc.Encode(st)
	case r.URL.Path == "/v1/route":
		key, err := id.Parse(r.URL.Query().Get("key"))
		if err != nil {
			http.Error(w, `{"error":"key"}`, http.StatusBadRequest)
			return
		}
		root := NewTruth(f.ring).Root(key)
		if f.misroute.Load() {
			root = f.self
		}
		enc.Encode(Route{Key: key.String(), Root: root.String(), Hops: 1, LatencyMS: 1.5})
	case r.URL.Path == "/metrics":
		w.Write([]byte("go_goroutines 7\nprocess_resident_memory_bytes 2097152\npastry_messages_sent_total{type=\"route\"} 3\n"))
	case strings.HasPrefix(r.URL.Path, "/v1/records/"):
		name := strings.TrimPrefix(r.URL.Path, "/v1/records/")
		if r.Method == http.MethodPut {
			b := make([]byte, 64)
			n, _ := r.Body.Read(b)
			f.records[name] = b[:n]
			enc.Encode(map[string]string{"key": "k"})
			return
		}
		enc.Encode(map[string][]byte{"value": f.records[name]})
	default:
		http.NotFound(w, r)
	}
}

// Targets mode reads the nodes' ids from their status, waits for exact
// leaf sets, and judges every lookup against the true root: all correct
// over an honest ring, and every lookup whose key another node owns
// counted wrong when the nodes misroute.
func TestTargetsMode(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	ids := NewTruth(randomIDs(rng, 6)).ids
	var misroute atomic.Bool
	records := map[string][]byte{} // one store for all: a record put through one node reads back through another
	var targets []Target
	for _, x := range ids {
		srv := httptest.NewServer(&fakeNode{self: x, ring: ids, token: "tok", misroute: &misroute, records: records})
		t.Cleanup(srv.Close)
		targets = append(targets, Target{API: srv.URL, Token: "tok"})
	}
	cfg := Config{Targets: targets, Lookups: 60, Records: 3, Concurrency: 1, Seed: 1, ReadyTimeout: 10 * time.Second}
	rep, err := Targets(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Ready || rep.Lookups.Correct != 60 || rep.Records == nil || rep.Records.GetOK != 3 {
		t.Fatalf("ready %v, lookups %+v, records %+v", rep.Ready, rep.Lookups, rep.Records)
	}
	if fp := rep.Footprints[len(rep.Footprints)-1]; fp.RSSMeanMiB != 2 || fp.GoroutineMean != 7 || fp.MessagesSent != 18 {
		t.Fatalf("footprint %+v", fp)
	}

	misroute.Store(true)
	rep, err = Targets(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var want int // lookups whose origin is not the key's root
	for _, s := range rep.LookupSamples {
		if s.Want != ids[s.From].String() {
			want++
		}
	}
	if want == 0 || rep.Lookups.Wrong != want || rep.Lookups.Correct != 60-want {
		t.Fatalf("misrouting nodes: %d wrong, %d correct; want %d wrong", rep.Lookups.Wrong, rep.Lookups.Correct, want)
	}

	// Faults and shaping need local mode.
	if _, err := Targets(context.Background(), Config{Targets: targets, KillPercent: 10}); err == nil {
		t.Fatal("targets mode accepted --kill")
	}
}
