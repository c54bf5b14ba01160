package cluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
)

// Target is one node of a targets file: its API's base URL and token.
type Target struct {
	API   string `json:"api"`
	Token string `json:"token,omitempty"`
}

// targetsFile is the targets file: {"token": T, "nodes": [{"api": URL,
// "token": T}, ...]}; a node without a token takes the file's, and
// without either the caller's default.
type targetsFile struct {
	Token string   `json:"token"`
	Nodes []Target `json:"nodes"`
}

// MaxTargets bounds a targets file.
const MaxTargets = 100_000

// ParseTargets reads a targets file strictly (known keys only, one JSON
// object, every api an http or https URL of a host and port with no path,
// no node twice). token is the default token.
func ParseTargets(data []byte, token string) ([]Target, error) {
	var tf targetsFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&tf); err != nil {
		return nil, fmt.Errorf("targets file: want {\"nodes\": [{\"api\": \"http://HOST:7700\", \"token\": \"...\"}]}: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("targets file: more than one JSON value")
	}
	if len(tf.Nodes) == 0 {
		return nil, errors.New("targets file: no nodes")
	}
	if len(tf.Nodes) > MaxTargets {
		return nil, fmt.Errorf("targets file: %d nodes, at most %d", len(tf.Nodes), MaxTargets)
	}
	if tf.Token != "" {
		token = tf.Token
	}
	seen := map[string]int{}
	out := make([]Target, len(tf.Nodes))
	for i, n := range tf.Nodes {
		u, err := url.Parse(n.API)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Port() == "" ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return nil, fmt.Errorf("targets file: node %d: api %q: want http://HOST:PORT or https://HOST:PORT", i, n.API)
		}
		base := u.Scheme + "://" + u.Host
		if j, dup := seen[base]; dup {
			return nil, fmt.Errorf("targets file: nodes %d and %d are both %s", j, i, base)
		}
		seen[base] = i
		tok := n.Token
		if tok == "" {
			tok = token
		}
		if strings.ContainsAny(tok, " \t\r\n") {
			return nil, fmt.Errorf("targets file: node %d: the token holds white space", i)
		}
		out[i] = Target{API: base, Token: tok}
	}
	return out, nil
}
