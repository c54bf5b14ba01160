package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client talks to one node's HTTP API (docs/http-api.md).
type Client struct {
	Base  string // http://HOST:PORT
	Token string
	HTTP  *http.Client
}

// maxAnswer bounds what is read of an answer (/metrics is the largest).
const maxAnswer = 8 << 20

// APIError is a non-2xx answer.
type APIError struct {
	Status int
	Msg    string
}

func (e *APIError) Error() string { return fmt.Sprintf("the API answered %d: %s", e.Status, e.Msg) }

func (c *Client) do(ctx context.Context, method, path string, q url.Values, body []byte) ([]byte, error) {
	u := strings.TrimSuffix(c.Base, "/") + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(b, &e)
		if e.Error == "" {
			e.Error = strings.TrimSpace(string(b[:min(len(b), 200)]))
		}
		return nil, &APIError{resp.StatusCode, e.Error}
	}
	return b, nil
}

func (c *Client) getJSON(ctx context.Context, path string, q url.Values, out any) error {
	b, err := c.do(ctx, http.MethodGet, path, q, nil)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

// Handle is a node in an answer.
type Handle struct {
	NodeID string `json:"node_id"`
	PeerID string `json:"peer_id"`
}

// Status is /v1/status.
type Status struct {
	NodeID  string `json:"node_id"`
	PeerID  string `json:"peer_id"`
	Status  string `json:"status"`
	LeafSet struct {
		Left  []Handle `json:"left"`
		Right []Handle `json:"right"`
	} `json:"leaf_set"`
	TableEntries int    `json:"routing_table_entries"`
	Version      string `json:"version"`
}

// Status reads /v1/status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	err := c.getJSON(ctx, "/v1/status", nil, &s)
	return s, err
}

// Route is /v1/route's answer.
type Route struct {
	Key      string   `json:"key"`
	Root     string   `json:"root"`
	RootPeer string   `json:"root_peer_id"`
	Hops     int      `json:"hops"`
	Path     []string `json:"path"`
	// AnswerHops is the answer's overlay hops back to the origin: 1 when
	// the root sent it straight, more when it was routed.
	AnswerHops int     `json:"answer_hops"`
	LatencyMS  float64 `json:"latency_ms"`
}

// Route runs a traced lookup of key from the node.
func (c *Client) Route(ctx context.Context, key string, timeout time.Duration) (Route, error) {
	var r Route
	err := c.getJSON(ctx, "/v1/route", url.Values{"key": {key}, "timeout": {timeout.String()}}, &r)
	return r, err
}

// Put stores value as the node's record name.
func (c *Client) Put(ctx context.Context, name string, value []byte) error {
	_, err := c.do(ctx, http.MethodPut, "/v1/records/"+url.PathEscape(name), nil, value)
	return err
}

// Get reads owner's record name through the node.
func (c *Client) Get(ctx context.Context, name, owner string) ([]byte, error) {
	var r struct {
		Value []byte `json:"value"`
	}
	err := c.getJSON(ctx, "/v1/records/"+url.PathEscape(name), url.Values{"owner": {owner}}, &r)
	return r.Value, err
}

// Metrics reads /metrics.
func (c *Client) Metrics(ctx context.Context) (string, error) {
	b, err := c.do(ctx, http.MethodGet, "/metrics", nil, nil)
	return string(b), err
}
