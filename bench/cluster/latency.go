package cluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"time"

	"github.com/pastrynet/pastry/bench/sim"
)

// Matrix is the one-way delay from node i to node j, M[i][j].
type Matrix [][]time.Duration

// maxDelayMS bounds a matrix entry (pastry node --inject-latency refuses
// more than 10 s).
const maxDelayMS = 10_000

// ParseMatrix reads a latency matrix: a JSON array of n arrays of n
// numbers, the one-way delay in milliseconds from node i (the row) to
// node j. The diagonal is ignored. n must be want, if want > 0.
func ParseMatrix(data []byte, want int) (Matrix, error) {
	var rows [][]float64
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&rows); err != nil {
		return nil, fmt.Errorf("latency matrix: want a JSON array of arrays of milliseconds: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("latency matrix: more than one JSON value")
	}
	n := len(rows)
	if n == 0 {
		return nil, errors.New("latency matrix: empty")
	}
	if want > 0 && n != want {
		return nil, fmt.Errorf("latency matrix: %d rows for %d nodes", n, want)
	}
	m := make(Matrix, n)
	for i, r := range rows {
		if len(r) != n {
			return nil, fmt.Errorf("latency matrix: row %d has %d entries, want %d", i, len(r), n)
		}
		m[i] = make([]time.Duration, n)
		for j, v := range r {
			if math.IsNaN(v) || v < 0 || v > maxDelayMS {
				return nil, fmt.Errorf("latency matrix: [%d][%d] = %v ms, want 0 to %d", i, j, v, maxDelayMS)
			}
			if i != j {
				m[i][j] = time.Duration(v * float64(time.Millisecond))
			}
		}
	}
	return m, nil
}

// ModelMatrix is the matrix of n nodes placed by one of the simulator's
// network models ("plane", "sphere", "transit-stub"; bench/sim) from seed:
// the same delays a simulated run of that model and seed would use.
func ModelMatrix(name string, seed uint64, n int) (Matrix, error) {
	rng := rand.New(rand.NewPCG(seed, 0x6c6174))
	model, err := sim.NewModel(name, rng)
	if err != nil {
		return nil, err
	}
	for i := range n {
		model.Place(i, rng)
	}
	m := make(Matrix, n)
	for i := range n {
		m[i] = make([]time.Duration, n)
		for j := range n {
			if i != j {
				m[i][j] = min(model.Delay(i, j), maxDelayMS*time.Millisecond)
			}
		}
	}
	return m, nil
}

// latencyFile is node i's --inject-latency file: its delay to every
// other node, by peer ID.
func (m Matrix) latencyFile(i int, peers []string) ([]byte, error) {
	type file struct {
		Default string            `json:"default"`
		Peers   map[string]string `json:"peers"`
	}
	f := file{Default: "0s", Peers: make(map[string]string, len(peers))}
	for j, p := range peers {
		if j != i {
			f.Peers[p] = m[i][j].String()
		}
	}
	return json.Marshal(f)
}

// Stats are the matrix's mean and largest off-diagonal entries.
func (m Matrix) Stats() (mean, maxd time.Duration) {
	var sum time.Duration
	var k int
	for i := range m {
		for j, d := range m[i] {
			if i != j {
				sum += d
				k++
				maxd = max(maxd, d)
			}
		}
	}
	if k > 0 {
		mean = sum / time.Duration(k)
	}
	return mean, maxd
}
