package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pastrynet/pastry"
	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/multicast"
)

// Topics over the HTTP API (Scribe, package multicast):
//
//	POST /v1/topics/{name}         publish the request body (at most apiMaxPublish bytes)
//	GET  /v1/topics/{name}/events  subscribe: Server-Sent Events, one per message
//	GET  /v1/topics                this node's part in the topics' trees
const (
	apiMaxPublish     = 64 << 10 // multicast's default MaxData
	apiMaxStreams     = 64       // concurrent /events streams
	apiMaxTopicName   = 256
	sseKeepalive      = 15 * time.Second
	topicsPathPrefix  = "/v1/topics/"
	topicEventsSuffix = "/events"
)

// The topics' JSON documents.
type (
	publishJSON struct {
		Topic   string `json:"topic"`
		TopicID string `json:"topic_id"`
		Bytes   int    `json:"bytes"`
		Signed  bool   `json:"signed,omitempty"`
	}
	// eventJSON is one message of an /events stream; Text is Data when
	// that is UTF-8 text.
	eventJSON struct {
		Topic     string `json:"topic"`
		Publisher string `json:"publisher"`
		Seq       uint64 `json:"seq"`
		Data      string `json:"data"` // base64
		Text      string `json:"text,omitempty"`
	}
	topicInfoJSON struct {
		TopicID    string       `json:"topic_id"`
		Subscribed bool         `json:"subscribed"`
		Root       bool         `json:"root"`
		Parent     string       `json:"parent,omitempty"`
		Children   []handleJSON `json:"children"`
		Depth      int          `json:"depth"`
	}
	topicsJSON struct {
		Topics []topicInfoJSON `json:"topics"`
		Stats  multicast.Stats `json:"stats"`
		Tree   multicast.Tree  `json:"tree"`
	}
)

// checkTopicName refuses names a user cannot have meant.
func checkTopicName(name string) error {
	switch {
	case name == "":
		return errors.New("empty topic name")
	case len(name) > apiMaxTopicName:
		return fmt.Errorf("topic name of %d bytes: at most %d", len(name), apiMaxTopicName)
	case !utf8.ValidString(name):
		return errors.New("topic name is not UTF-8")
	case strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return fmt.Errorf("topic name %q has control characters", name)
	}
	return nil
}

// handleTopics serves everything under /v1/topics.
func (a *apiServer) handleTopics(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/v1/topics" {
		if r.Method == http.MethodPost {
			writeError(w, http.StatusMethodNotAllowed, "publish to /v1/topics/NAME")
			return
		}
		a.handleTopicList(w, r)
		return
	}
	rest := strings.TrimPrefix(r.URL.Path, topicsPathPrefix)
	name, events := strings.CutSuffix(rest, topicEventsSuffix)
	if err := checkTopicName(name); err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	switch {
	case events && r.Method == http.MethodGet:
		a.handleTopicEvents(w, r, name)
	case !events && r.Method == http.MethodPost:
		a.handlePublish(w, r, name)
	case events:
		w.Header().Set("Allow", "GET")
		writeError(w, http.StatusMethodNotAllowed, "%s: subscribe with GET", r.URL.Path)
	default:
		w.Header().Set("Allow", "POST")
		writeError(w, http.StatusMethodNotAllowed, "%s: publish with POST (subscribe: GET %s%s%s)", r.URL.Path, topicsPathPrefix, name, topicEventsSuffix)
	}
}

func (a *apiServer) handleTopicList(w http.ResponseWriter, r *http.Request) {
	if !exactQuery(w, r) {
		return
	}
	infos, st, err := a.node.TopicsInfo(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "%v", err)
		return
	}
	stats, _ := a.node.Stats(r.Context())
	out := topicsJSON{Topics: []topicInfoJSON{}, Stats: st, Tree: stats.Tree}
	for _, ti := range infos {
		tj := topicInfoJSON{TopicID: ti.Topic.String(), Subscribed: ti.Subscribed, Root: ti.Root, Depth: ti.Depth, Children: toHandles(ti.Children)}
		if ti.Parent.Addr != "" {
			tj.Parent = ti.Parent.ID.String()
		}
		out.Topics = append(out.Topics, tj)
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *apiServer) handlePublish(w http.ResponseWriter, r *http.Request, name string) {
	q := r.URL.Query()
	signed := false
	for k, v := range q {
		if k != "signed" || len(v) != 1 || (v[0] != "1" && v[0] != "true") {
			writeError(w, http.StatusBadRequest, "unknown query parameter %q: publishing takes only signed=1", k)
			return
		}
		signed = true
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "message too large: at most %d bytes", apiMaxPublish)
			return
		}
		writeError(w, http.StatusBadRequest, "read the message: %v", err)
		return
	}
	if st := a.node.Status(); st != core.StatusJoined {
		writeError(w, http.StatusServiceUnavailable, "the node is %s, not joined: it cannot publish yet", st)
		return
	}
	publish, tp := a.node.Publish, multicast.TopicID(name)
	if signed {
		publish, tp = a.node.PublishSigned, multicast.OwnedTopicID(a.node.ID(), name)
	}
	if err := publish(r.Context(), name, data); err != nil {
		switch {
		case errors.Is(err, multicast.ErrTooLarge):
			writeError(w, http.StatusRequestEntityTooLarge, "%v", err)
		case errors.Is(err, pastry.ErrClosed):
			writeError(w, http.StatusServiceUnavailable, "the node is shutting down")
		default:
			writeError(w, http.StatusServiceUnavailable, "%v", err)
		}
		return
	}
	writeJSON(w, http.StatusAccepted, publishJSON{Topic: name, TopicID: tp.String(), Bytes: len(data), Signed: signed})
}

// handleTopicEvents streams a subscription as Server-Sent Events: one
// "message" event per message (its data a JSON eventJSON, its id
// PUBLISHER-SEQ), and a comment every sseKeepalive. It ends when the
// client goes away or the node stops.
func (a *apiServer) handleTopicEvents(w http.ResponseWriter, r *http.Request, name string) {
	owner, ok := ownerQuery(w, r, "subscribing")
	if !ok {
		return
	}
	if st := a.node.Status(); st != core.StatusJoined {
		writeError(w, http.StatusServiceUnavailable, "the node is %s, not joined: it cannot subscribe yet", st)
		return
	}
	select {
	case a.streams <- struct{}{}:
		defer func() { <-a.streams }()
	default:
		writeError(w, http.StatusTooManyRequests, "too many subscription streams (%d): retry later", apiMaxStreams)
		return
	}
	var sub *pastry.Subscription
	var err error
	if owner != "" {
		sub, err = a.node.SubscribeOwned(r.Context(), name, owner)
	} else {
		sub, err = a.node.Subscribe(r.Context(), name)
	}
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "%v", err)
		return
	}
	defer sub.Close()
	rc := http.NewResponseController(w)
	// A stream outlives the server's write timeout.
	if err := rc.SetWriteDeadline(time.Time{}); err != nil {
		writeError(w, http.StatusInternalServerError, "cannot stream: %v", err)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, ": subscribed to %q (%s)\n\n", name, sub.Topic())
	if rc.Flush() != nil {
		return
	}
	keep := time.NewTicker(sseKeepalive)
	defer keep.Stop()
	for {
		select {
		case m, ok := <-sub.C:
			if !ok {
				return
			}
			ev := eventJSON{Topic: name, Publisher: m.Publisher.String(), Seq: m.Seq, Data: base64.StdEncoding.EncodeToString(m.Data)}
			if utf8.Valid(m.Data) {
				ev.Text = string(m.Data)
			}
			b, _ := json.Marshal(ev)
			if _, err := fmt.Fprintf(w, "id: %s-%d\nevent: message\ndata: %s\n\n", ev.Publisher, m.Seq, b); err != nil {
				return
			}
		case <-keep.C:
			if _, err := io.WriteString(w, ": keepalive\n\n"); err != nil {
				return
			}
		case <-r.Context().Done():
			return
		}
		if rc.Flush() != nil {
			return
		}
	}
}

func runPublish(args []string, stdout, stderr io.Writer) error {
	fs, cf := newClientFlagSet("publish", " TOPIC MESSAGE|-", "Publishes MESSAGE (or standard input, with -) to TOPIC from the node:\nevery subscriber of TOPIC gets it once. With --signed, to the node's own\ntopic TOPIC, signed with its key: its subscribers (pastry subscribe --owner)\ndeliver nothing else.", true, os.Getenv, stderr)
	signed := fs.Bool("signed", false, "publish to the node's own topic, signed with its key")
	if err := parseClientArgs(fs, args, 2); err != nil {
		return err
	}
	name := fs.Arg(0)
	if err := checkTopicName(name); err != nil {
		return err
	}
	data := []byte(fs.Arg(1))
	if fs.Arg(1) == "-" {
		var err error
		if data, err = io.ReadAll(io.LimitReader(os.Stdin, apiMaxPublish+1)); err != nil {
			return fmt.Errorf("read standard input: %w", err)
		}
	}
	if len(data) > apiMaxPublish {
		return fmt.Errorf("message too large: at most %d bytes", apiMaxPublish)
	}
	c, ctx, cancel, err := cf.connect()
	if err != nil {
		return err
	}
	defer cancel()
	path := topicsPathPrefix + url.PathEscape(name)
	if *signed {
		path += "?signed=1"
	}
	var pj publishJSON
	raw, err := c.do(ctx, http.MethodPost, path, data, &pj)
	if err != nil {
		return err
	}
	if cf.json {
		return printRaw(stdout, raw)
	}
	how := ""
	if pj.Signed {
		how = ", signed"
	}
	fmt.Fprintf(stdout, "published %d bytes to %s (topic id %s%s)\n", pj.Bytes, pj.Topic, pj.TopicID, how)
	return nil
}

func runSubscribe(args []string, stdout, stderr io.Writer) error {
	fs, cf := newClientFlagSet("subscribe", " TOPIC", "Subscribes the node to TOPIC and prints each message as it arrives, one a line\n(its text, or base64 when it is not text; --json: the whole event), until\ninterrupted, --count messages, or --for has passed.", true, os.Getenv, stderr)
	count := fs.Int("count", 0, "stop after this many messages (0: no limit)")
	forD := fs.Duration("for", 0, "stop after this long (0: no limit)")
	owner := fs.String("owner", "", "the peer ID of TOPIC's owner: deliver only what it signed (pastry publish --signed)")
	if err := parseClientArgs(fs, args, 1); err != nil {
		return err
	}
	name := fs.Arg(0)
	if err := checkTopicName(name); err != nil {
		return err
	}
	if *count < 0 || *forD < 0 {
		return usageError(fs, "--count and --for must not be negative")
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *forD > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *forD)
		defer cancel()
	}
	path := topicsPathPrefix + url.PathEscape(name) + topicEventsSuffix
	if *owner != "" {
		if _, err := peer.Decode(*owner); err != nil {
			return usageError(fs, "--owner %q: not a peer ID", *owner)
		}
		path += "?owner=" + url.QueryEscape(*owner)
	}
	body, err := c.stream(ctx, path, cf.timeout)
	if err != nil {
		return err
	}
	defer body.Close()
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	got := 0
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var ev eventJSON
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			return fmt.Errorf("the API sent an event that is not its JSON (%v): is it a pastry node?", err)
		}
		switch {
		case cf.json:
			fmt.Fprintln(stdout, line)
		case ev.Text != "" || ev.Data == "":
			fmt.Fprintln(stdout, ev.Text)
		default:
			fmt.Fprintln(stdout, ev.Data)
		}
		got++
		if *count > 0 && got >= *count {
			return nil
		}
	}
	if ctx.Err() != nil {
		return nil // interrupted, or --for passed
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("the subscription stream broke: %w", err)
	}
	return errors.New("the node ended the subscription stream (it stopped?)")
}

// ownerQuery reads a request's only allowed query, owner=PEERID (empty
// when absent); on anything else it answers 400 and reports false.
func ownerQuery(w http.ResponseWriter, r *http.Request, doing string) (peer.ID, bool) {
	var owner peer.ID
	for k, v := range r.URL.Query() {
		if k != "owner" || len(v) != 1 {
			writeError(w, http.StatusBadRequest, "query %q: %s takes only owner=PEERID", k, doing)
			return "", false
		}
		p, err := peer.Decode(v[0])
		if err != nil {
			writeError(w, http.StatusBadRequest, "owner %q: not a peer ID: %v", v[0], err)
			return "", false
		}
		owner = p
	}
	return owner, true
}
