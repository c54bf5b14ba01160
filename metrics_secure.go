package pastry

import (
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/pastrynet/pastry/transport"
)

// secureMetrics are the admission policy's instruments (see
// RegisterMetrics): refusals by the network's admission mode and by
// address diversity.
type secureMetrics struct {
	certsRejected, puzzleRejected, diversityRejected, certsBatched metric.Int64ObservableCounter
	reasonAttrs                                                    [transport.NumCertReasons]attribute.Set

	// Secure lookups (LookupWith with Secure).
	lookups, tests, redundant, rounds metric.Int64ObservableCounter
	passed, failed                    attribute.Set
}

func (s *secureMetrics) create(counter func(name, unit, desc string) metric.Int64ObservableCounter) {
	s.certsRejected = counter("pastry.secure.certs_rejected", "{certificate}", "Certificates refused in certificate mode (handles and stream openers), by reason: malformed, signature (another authority, or altered), expired, not_yet_valid, foreign_network, key_mismatch (another key's), id_mismatch (the handle claims another id), missing.")
	s.puzzleRejected = counter("pastry.secure.puzzle_rejected", "{handle}", "Handles and stream openers refused in open mode because their key does not solve the identity puzzle.")
	s.diversityRejected = counter("pastry.secure.diversity_rejected", "{offer}", "Offers of a node to a routing-table row or the neighbourhood set refused by address diversity (more than MaxPerAddrGroup of its IPv4 /16 or IPv6 /32 already there); a node offered again is counted again.")
	s.certsBatched = counter("pastry.secure.certs_batched", "{certificate}", "Certificates whose signatures were checked in batches of more than one (join answers, rows, leaf sets).")
	s.lookups = counter("pastry.secure.lookups", "{lookup}", "Secure lookups this node started and that ended (with a root or an error).")
	s.tests = counter("pastry.secure.failure_tests", "{test}", "Routing failure tests of secure lookups' routed answers, the answer's witnesses included, by result: passed, or failed (then redundant routing ran).")
	s.redundant = counter("pastry.secure.redundant_routings", "{lookup}", "Secure lookups that ran redundant routing (the test failed, no answer came in time, or the caller asked for it).")
	s.rounds = counter("pastry.secure.redundant_rounds", "{round}", "Rounds of redundant routing run, over all secure lookups (at most 3 each).")
	s.passed = attribute.NewSet(attribute.String("result", "passed"))
	s.failed = attribute.NewSet(attribute.String("result", "failed"))
	for i := range s.reasonAttrs {
		s.reasonAttrs[i] = attribute.NewSet(attribute.String("reason", transport.CertReasons[i]))
	}
}

// observeTransport reports the transport's counters (valid even when the
// event loop did not answer).
func (s *secureMetrics) observeTransport(o metric.Observer, tr transport.SecurityStats) {
	for i, v := range tr.CertRejected {
		o.ObserveInt64(s.certsRejected, clampInt64(v), metric.WithAttributeSet(s.reasonAttrs[i]))
	}
	o.ObserveInt64(s.puzzleRejected, clampInt64(tr.PuzzleRejected))
	o.ObserveInt64(s.certsBatched, clampInt64(tr.CertsBatched))
}

// observeLookups reports the secure lookups' counters.
func (s *secureMetrics) observeLookups(o metric.Observer, st *secureLookupStats) {
	o.ObserveInt64(s.lookups, clampInt64(st.lookups.Load()))
	o.ObserveInt64(s.tests, clampInt64(st.testPassed.Load()), metric.WithAttributeSet(s.passed))
	o.ObserveInt64(s.tests, clampInt64(st.testFailed.Load()), metric.WithAttributeSet(s.failed))
	o.ObserveInt64(s.redundant, clampInt64(st.redundant.Load()))
	o.ObserveInt64(s.rounds, clampInt64(st.rounds.Load()))
}
