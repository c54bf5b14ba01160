// Package fuzz holds go test -fuzz targets for every decoder that reads
// untrusted bytes: the frame reader, the message codec, key files, node
// ids in text, peer IDs, node certificates and the certificate
// authority's files. The project's rule: no panic is
// reachable from the wire, and untrusted input gets a clear error and
// changes nothing. A fuzz target here checks properties, not only the
// absence of panics: what decodes re-encodes to something that decodes
// equal, encodings are canonical (a second round trip is byte-identical),
// every accepted handle's node id matches its peer ID, limits hold, and
// the hand-written codec never accepts what the generated protobuf code
// rejects.
//
// The targets live here, apart from the packages they test, so that their
// seeds (valid encodings of every message type, with real identities) are
// built from public APIs only, as an attacker would have to.
//
// Run one target (each for a few seconds in CI, longer when a decoder
// changes):
//
//	go test -run='^$' -fuzz='^FuzzFrameReader$' -fuzztime=5s ./fuzz/
//	go test -run='^$' -fuzz='^FuzzDecode$' -fuzztime=5s ./fuzz/
//	go test -run='^$' -fuzz='^FuzzMessageRoundTrip$' -fuzztime=5s ./fuzz/
//	go test -run='^$' -fuzz='^FuzzKeyFile$' -fuzztime=5s ./fuzz/
//	go test -run='^$' -fuzz='^FuzzIDParse$' -fuzztime=5s ./fuzz/
//	go test -run='^$' -fuzz='^FuzzNodeIDFromPeer$' -fuzztime=5s ./fuzz/
//	go test -run='^$' -fuzz='^FuzzCertificate$' -fuzztime=5s ./fuzz/
//	go test -run='^$' -fuzz='^FuzzCertificateFile$' -fuzztime=5s ./fuzz/
//
// The decoders of the pastry command (package main, which cannot be
// imported here) have their targets in cmd/pastry/fuzz_test.go, with the
// same kind of properties: FuzzConfigFile (the --config file),
// FuzzConfigEnv (the PASTRY_* variables), FuzzPeersFile (the saved
// peers.json), FuzzParseBootstrap, FuzzParseKey, FuzzParseLogLevel and
// FuzzClientResponse (the CLI client reading the HTTP API's answers):
//
//	go test -run='^$' -fuzz='^FuzzConfigFile$' -fuzztime=5s ./cmd/pastry/
//
// The runtime's own lookup answers (a payload other nodes send, decoded
// by an unexported parser) have FuzzLookupAnswer in the root package:
//
//	go test -run='^$' -fuzz='^FuzzLookupAnswer$' -fuzztime=5s .
//
// The test binary links libp2p, so coverage bookkeeping makes each
// execution slower than in a small package, and the fuzzer's default
// minimisation of every new input (up to 60 s) can stall the run: add
// -fuzzminimizetime=2s to short runs.
//
// go test ./fuzz/ (without -fuzz) runs every target on its seed corpus and
// on any failing inputs saved under testdata/fuzz/, so a crash found once
// stays a regression test.
package fuzz
