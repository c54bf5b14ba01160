package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

// clientFlags are the flags every client command shares.
type clientFlags struct {
	api     string
	token   string
	json    bool
	timeout time.Duration
}

// newClientFlagSet declares --api, --token, --timeout and (withJSON)
// --json, defaulting from PASTRY_API and PASTRY_TOKEN.
func newClientFlagSet(name, args, summary string, withJSON bool, getenv func(string) string, stderr io.Writer) (*flag.FlagSet, *clientFlags) {
	cf := &clientFlags{}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	api := getenv("PASTRY_API")
	if api == "" || api == apiOff {
		api = defaultAPI
	}
	fs.StringVar(&cf.api, "api", api, "the node's HTTP API, HOST:PORT or http://HOST:PORT (env PASTRY_API)")
	fs.StringVar(&cf.token, "token", "", "bearer token for the API (default: env PASTRY_TOKEN)")
	fs.DurationVar(&cf.timeout, "timeout", 15*time.Second, "give up on the API after this long")
	if withJSON {
		fs.BoolVar(&cf.json, "json", false, "print the API's JSON as it is")
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: pastry %s [flags]%s\n\n%s\n\nflags:\n", name, args, summary)
		fs.PrintDefaults()
	}
	return fs, cf
}

// parseClientArgs parses args, requiring exactly nargs positional
// arguments.
func parseClientArgs(fs *flag.FlagSet, args []string, nargs int) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() < nargs:
		return usageError(fs, "missing argument")
	case fs.NArg() > nargs:
		return usageError(fs, "unexpected argument %q", fs.Arg(nargs))
	}
	return nil
}

// usageError prints what is wrong with the command line and the usage of
// fs, and returns an error wrapping errUsage (which main does not print
// again; it exits 2).
func usageError(fs *flag.FlagSet, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintf(fs.Output(), "pastry %s: %s\n\n", fs.Name(), msg)
	fs.Usage()
	return fmt.Errorf("%w: %s", errUsage, msg)
}

// apiClient calls a node's HTTP API.
type apiClient struct {
	base  *url.URL
	token string
	http  *http.Client
}

func newAPIClient(cf *clientFlags) (*apiClient, error) {
	raw := cf.api
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("--api %q: want HOST:PORT or http://HOST:PORT", cf.api)
	}
	if cf.timeout <= 0 {
		return nil, fmt.Errorf("--timeout %v: want a positive duration", cf.timeout)
	}
	return &apiClient{base: u, token: cf.token, http: &http.Client{Timeout: cf.timeout}}, nil
}

// apiError is an error the API answered with.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return fmt.Sprintf("the API answered %d: %s", e.status, e.msg) }

// get fetches path?query and returns the raw body of a 200 answer.
func (c *apiClient) get(ctx context.Context, path string, query url.Values) ([]byte, error) {
	resp, err := c.send(ctx, http.MethodGet, path, query, nil, c.http)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return c.answer(resp, http.StatusOK)
}

// do sends body to path with method and decodes a 2xx answer into out;
// raw is the body as received.
func (c *apiClient) do(ctx context.Context, method, path string, body []byte, out any) (raw []byte, err error) {
	resp, err := c.send(ctx, method, path, nil, body, c.http)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if raw, err = c.answer(resp, http.StatusOK, http.StatusAccepted); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return nil, fmt.Errorf("the API at %s sent something that is not its JSON (%v): is it a pastry node?", c.base, err)
	}
	return raw, nil
}

// stream opens a long-lived GET of path (Server-Sent Events) and returns
// its body once the API answered 200; connecting, not the stream, is
// bounded by connect.
func (c *apiClient) stream(ctx context.Context, path string, connect time.Duration) (io.ReadCloser, error) {
	hc := &http.Client{Transport: &http.Transport{ResponseHeaderTimeout: connect, Proxy: http.ProxyFromEnvironment}}
	resp, err := c.send(ctx, http.MethodGet, path, nil, nil, hc)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		_, err := c.answer(resp, http.StatusOK)
		return nil, err
	}
	return resp.Body, nil
}

func (c *apiClient) send(ctx context.Context, method, path string, query url.Values, body []byte, hc *http.Client) (*http.Response, error) {
	// path is escaped (a topic name is path-escaped in it) and may carry
	// its own query.
	u := *c.base
	path, rawQuery, _ := strings.Cut(path, "?")
	unesc, err := url.PathUnescape(path)
	if err != nil {
		return nil, fmt.Errorf("bad API path %q: %w", path, err)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + unesc
	u.RawPath = strings.TrimSuffix(c.base.EscapedPath(), "/") + path
	u.RawQuery = query.Encode()
	if rawQuery != "" {
		u.RawQuery = rawQuery
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	resp, err := hc.Do(req)
	if err != nil {
		var nerr net.Error
		if errors.As(err, &nerr) && nerr.Timeout() {
			return nil, fmt.Errorf("the API at %s did not answer in time: %w", c.base, err)
		}
		return nil, fmt.Errorf("cannot reach the API at %s: is `pastry node` or `pastry devnet` running? (%w)", c.base, err)
	}
	return resp, nil
}

// answer reads a response: the raw body of an answer with one of the
// codes the call expects, or the API's error.
func (c *apiClient) answer(resp *http.Response, ok ...int) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("read the API's answer: %w", err)
	}
	if slices.Contains(ok, resp.StatusCode) {
		return body, nil
	}
	var e errorJSON
	if json.Unmarshal(body, &e) != nil || e.Error == "" {
		e.Error = strings.TrimSpace(string(body))
	}
	if e.Error == "" {
		e.Error = cmp.Or(http.StatusText(resp.StatusCode), "no message")
	}
	if resp.StatusCode == http.StatusUnauthorized {
		return nil, fmt.Errorf("the API at %s refused the token: pass the node's token with --token or PASTRY_TOKEN (%s)", c.base, e.Error)
	}
	return nil, &apiError{status: resp.StatusCode, msg: e.Error}
}

// getJSON fetches and decodes; raw is the body as received.
func (c *apiClient) getJSON(ctx context.Context, path string, query url.Values, out any) (raw []byte, err error) {
	raw, err = c.get(ctx, path, query)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return nil, fmt.Errorf("the API at %s sent something that is not its JSON (%v): is it a pastry node?", c.base, err)
	}
	return raw, nil
}

// clientCommand runs f with a client built from args; nargs positional
// arguments are passed to f.
func clientCommand(name, argsUsage, summary string, nargs int, withJSON bool, args []string, stderr io.Writer,
	f func(ctx context.Context, c *apiClient, cf *clientFlags, pos []string) error) error {
	fs, cf := newClientFlagSet(name, argsUsage, summary, withJSON, os.Getenv, stderr)
	if err := parseClientArgs(fs, args, nargs); err != nil {
		return err
	}
	c, ctx, cancel, err := cf.connect()
	if err != nil {
		return err
	}
	defer cancel()
	return f(ctx, c, cf, fs.Args())
}

// client builds the API client of the parsed flags, the token from
// PASTRY_TOKEN when --token is not given (not a flag default: -h would
// print it).
func (cf *clientFlags) client() (*apiClient, error) {
	if cf.token == "" {
		cf.token = os.Getenv("PASTRY_TOKEN")
	}
	return newAPIClient(cf)
}

// connect is client with a context bounded by --timeout.
func (cf *clientFlags) connect() (*apiClient, context.Context, context.CancelFunc, error) {
	c, err := cf.client()
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), cf.timeout)
	return c, ctx, cancel, nil
}

// printRaw prints an API answer as it came (it is indented already).
func printRaw(w io.Writer, raw []byte) error {
	_, err := w.Write(append(bytes.TrimRight(raw, "\n"), '\n'))
	return err
}

func runStatus(args []string, stdout, stderr io.Writer) error {
	return clientCommand("status", "", "Shows the node's identity, status and the size of its routing state.", 0, true, args, stderr,
		func(ctx context.Context, c *apiClient, cf *clientFlags, _ []string) error {
			var st statusJSON
			raw, err := c.getJSON(ctx, "/v1/status", nil, &st)
			if err != nil {
				return err
			}
			if cf.json {
				return printRaw(stdout, raw)
			}
			fmt.Fprintf(stdout, "node id       %s\n", st.NodeID)
			fmt.Fprintf(stdout, "peer id       %s\n", st.PeerID)
			fmt.Fprintf(stdout, "status        %s\n", st.Status)
			fmt.Fprintf(stdout, "protocol      %s\n", st.Protocol)
			for i, a := range st.Addrs {
				label := ""
				if i == 0 {
					label = "addrs"
				}
				fmt.Fprintf(stdout, "%-13s %s/p2p/%s\n", label, a, st.PeerID)
			}
			fmt.Fprintf(stdout, "leaf set      %d left, %d right\n", len(st.LeafSet.Left), len(st.LeafSet.Right))
			fmt.Fprintf(stdout, "routing table %d entries\n", st.RoutingTableEntries)
			fmt.Fprintf(stdout, "neighbours    %d\n", st.NeighborhoodSize)
			fmt.Fprintf(stdout, "network size  ~%.0f nodes (estimate)\n", st.NetworkSizeEstimate)
			fmt.Fprintf(stdout, "uptime        %v\n", time.Duration(st.UptimeS*float64(time.Second)).Round(time.Second))
			if st.Version != "" { // older nodes did not say
				fmt.Fprintf(stdout, "version       %s\n", st.Version)
			}
			return nil
		})
}

func runTable(args []string, stdout, stderr io.Writer) error {
	return clientCommand("table", "", "Shows the node's routing table (row: column=node), leaf set and neighbourhood set.", 0, true, args, stderr,
		func(ctx context.Context, c *apiClient, cf *clientFlags, _ []string) error {
			var t tableJSON
			raw, err := c.getJSON(ctx, "/v1/table", nil, &t)
			if err != nil {
				return err
			}
			if cf.json {
				return printRaw(stdout, raw)
			}
			printTable(stdout, &t)
			return nil
		})
}

// printTable renders /v1/table for people: one line per routing-table
// row with COLUMN=SHORTID entries, then the leaf set and neighbours with
// full ids and peer IDs.
func printTable(w io.Writer, t *tableJSON) {
	short := func(s string) string { return s[:min(len(s), 8)] }
	entries := 0
	for _, r := range t.Rows {
		entries += len(r.Entries)
	}
	fmt.Fprintf(w, "node %s (b=%d)\n\nrouting table: %d entries in %d rows (column=node id prefix)\n", t.NodeID, t.B, entries, len(t.Rows))
	for _, r := range t.Rows {
		var parts []string
		for _, e := range r.Entries {
			parts = append(parts, e.Column+"="+short(e.NodeID))
		}
		if len(parts) == 0 {
			parts = []string{"(empty)"}
		}
		fmt.Fprintf(w, "  row %2d: %s\n", r.Row, strings.Join(parts, " "))
	}
	side := func(name string, hs []handleJSON) {
		fmt.Fprintf(w, "  %s (%d, closest first)\n", name, len(hs))
		for _, h := range hs {
			fmt.Fprintf(w, "    %s  %s\n", h.NodeID, h.PeerID)
		}
	}
	fmt.Fprintf(w, "\nleaf set\n")
	side("left", t.LeafSet.Left)
	side("right", t.LeafSet.Right)
	fmt.Fprintf(w, "\nneighbourhood set (%d)\n", len(t.NeighborhoodSet))
	for _, h := range t.NeighborhoodSet {
		fmt.Fprintf(w, "    %s  %s\n", h.NodeID, h.PeerID)
	}
}

func runRoute(args []string, stdout, stderr io.Writer) error {
	fs, cf := newClientFlagSet("route", " KEY", "Routes a lookup for KEY (32 hex digits) from the node and shows where it ended:\nthe root's node id, the hops, the path and the round-trip latency. With\n--secure, a secure lookup: constrained routing tables, the routing failure\ntest on the root's signed answer, and redundant routing when it fails.", true, os.Getenv, stderr)
	secure := fs.Bool("secure", false, "a secure lookup (failure test; redundant routing when it fails)")
	redundant := fs.Bool("redundant", false, "with --secure: run redundant routing whatever the test says")
	if err := parseClientArgs(fs, args, 1); err != nil {
		return err
	}
	if *redundant && !*secure {
		return usageError(fs, "--redundant needs --secure")
	}
	key, err := parseKey(fs.Arg(0))
	if err != nil {
		return err
	}
	c, ctx, cancel, err := cf.connect()
	if err != nil {
		return err
	}
	defer cancel()
	q := url.Values{"key": {key.String()}}
	if *secure {
		q.Set("secure", "1")
	}
	if *redundant {
		q.Set("redundant", "1")
	}
	var rt routeJSON
	raw, err := c.getJSON(ctx, "/v1/route", q, &rt)
	if err != nil {
		return err
	}
	if cf.json {
		return printRaw(stdout, raw)
	}
	printRoute(stdout, &rt)
	return nil
}

func printRoute(w io.Writer, rt *routeJSON) {
	fmt.Fprintf(w, "key      %s\nroot     %s\n", rt.Key, rt.Root)
	if rt.RootPeer != "" { // older nodes did not say
		fmt.Fprintf(w, "peer id  %s\n", rt.RootPeer)
	}
	fmt.Fprintf(w, "hops     %d (answer back: %d)\n", rt.Hops, rt.AnswerHops)
	for i, p := range rt.Path {
		label := ""
		if i == 0 {
			label = "path"
		}
		fmt.Fprintf(w, "%-8s %d. %s\n", label, i, p)
	}
	fmt.Fprintf(w, "latency  %.3f ms (round trip)\n", rt.LatencyMS)
	if rt.Secure {
		verdict := "failed or no answer"
		if rt.TestPassed {
			verdict = "passed"
		}
		fmt.Fprintf(w, "secure   failure test %s", verdict)
		if rt.Redundant {
			fmt.Fprintf(w, "; redundant routing, %d rounds, %d claims", rt.Rounds, rt.Claims)
		}
		fmt.Fprintln(w)
	}
}

func runID(args []string, stdout, stderr io.Writer) error {
	return clientCommand("id", "", "Prints the node's node id and peer ID.", 0, true, args, stderr,
		func(ctx context.Context, c *apiClient, cf *clientFlags, _ []string) error {
			var st statusJSON
			_, err := c.getJSON(ctx, "/v1/status", nil, &st)
			if err != nil {
				return err
			}
			if cf.json {
				out, _ := json.MarshalIndent(handleJSON{NodeID: st.NodeID, PeerID: st.PeerID}, "", "  ")
				return printRaw(stdout, out)
			}
			fmt.Fprintf(stdout, "node id  %s\npeer id  %s\n", st.NodeID, st.PeerID)
			return nil
		})
}
