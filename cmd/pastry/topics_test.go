package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pastrynet/pastry/multicast"
)

func apiDo(t *testing.T, method, base, path, token string, body []byte) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+base+path, bytes.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// events opens /v1/topics/NAME/events on base and returns its events as
// they come, until ctx ends.
func events(t *testing.T, ctx context.Context, base, name, query string) <-chan eventJSON {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+base+"/v1/topics/"+name+"/events"+query, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("events: %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	ch := make(chan eventJSON, 64)
	go func() {
		defer resp.Body.Close()
		defer close(ch)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var ev eventJSON
				if json.Unmarshal([]byte(line), &ev) == nil {
					ch <- ev
				}
			}
		}
	}()
	return ch
}

// waitInTree waits until the node at api subscribes to a topic and every
// topic it subscribes to has a parent (or the node is its root): a message published before a
// subscription joins its tree does not reach it.
func waitInTree(t *testing.T, api string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var tl topicsJSON
		code, _ := apiGet(t, api, "/v1/topics", "", &tl)
		joined, subscribed := code == 200, false
		for _, tp := range tl.Topics {
			subscribed = subscribed || tp.Subscribed
			if tp.Subscribed && !tp.Root && tp.Parent == "" {
				joined = false
			}
		}
		joined = joined && subscribed
		if joined {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: subscriptions not in their trees after 10 s: %+v", api, tl)
		}
	}
}

// Publishing through one node's API reaches the subscribers on the
// others' /events streams and through `pastry subscribe`; bad requests
// get clear errors.
func TestAPITopics(t *testing.T) {
	dn := startTestNet(t, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s1 := events(t, ctx, dn.nodes[1].api.Addr(), "chat", "")
	s2 := events(t, ctx, dn.nodes[2].api.Addr(), "chat", "")
	subOut := make(chan string, 1)
	go func() {
		_, so, se := runCmd("subscribe", "--api", dn.nodes[3].api.Addr(), "--count", "2", "--for", "20s", "chat")
		subOut <- so + se
	}()
	for _, i := range []int{1, 2, 3} { // the subscriptions join the tree
		waitInTree(t, dn.nodes[i].api.Addr())
	}
	var pj publishJSON
	code, body := apiDo(t, http.MethodPost, dn.nodes[0].api.Addr(), "/v1/topics/chat", "", []byte("hello"))
	if code != http.StatusAccepted || json.Unmarshal(body, &pj) != nil || pj.Bytes != 5 || pj.TopicID != multicast.TopicID("chat").String() {
		t.Fatalf("publish: %d %s", code, body)
	}
	if code, so, se := runCmd("publish", "--api", dn.nodes[2].api.Addr(), "chat", "second"); code != 0 || !strings.Contains(so, "published 6 bytes to chat") {
		t.Fatalf("pastry publish: %d %q %q", code, so, se)
	}
	// Two publishers: each message once, in no particular order between
	// them.
	for i, s := range []<-chan eventJSON{s1, s2} {
		var got []string
		for range 2 {
			select {
			case ev := <-s:
				if ev.Topic != "chat" {
					t.Fatalf("stream %d: %+v", i, ev)
				}
				got = append(got, ev.Text)
			case <-ctx.Done():
				t.Fatalf("stream %d: got only %q", i, got)
			}
		}
		if slices.Sort(got); !slices.Equal(got, []string{"hello", "second"}) {
			t.Fatalf("stream %d: got %q, want hello and second once each", i, got)
		}
	}
	if out := <-subOut; out != "hello\nsecond\n" && out != "second\nhello\n" {
		t.Fatalf("pastry subscribe printed %q", out)
	}
	var tl topicsJSON
	if code, body := apiGet(t, dn.nodes[1].api.Addr(), "/v1/topics", "", &tl); code != 200 || len(tl.Topics) == 0 || !tl.Topics[0].Subscribed || tl.Stats.Delivered != 2 {
		t.Fatalf("/v1/topics: %d %s", code, body)
	}

	base := dn.nodes[0].api.Addr()
	for _, c := range []struct {
		method, path string
		body         []byte
		code         int
		msg          string
	}{
		{"POST", "/v1/topics/", nil, 400, "empty topic name"},
		{"POST", "/v1/topics/" + strings.Repeat("x", 300), nil, 400, "at most 256"},
		{"POST", "/v1/topics/a%01b", nil, 400, "control characters"},
		{"POST", "/v1/topics/chat", make([]byte, apiMaxPublish+1), 413, "too large"},
		{"POST", "/v1/topics/chat?x=1", nil, 400, "takes only signed=1"},
		{"GET", "/v1/topics/chat/events?owner=nope", nil, 400, "not a peer ID"},
		{"GET", "/v1/topics/chat/events?x=1", nil, 400, "subscribing takes only owner=PEERID"},
		{"PUT", "/v1/topics/chat", nil, 405, "read-only"},
		{"POST", "/v1/topics/chat/events", nil, 405, "subscribe with GET"},
		{"GET", "/v1/topics/chat", nil, 405, "publish with POST"},
		{"POST", "/v1/status", nil, 405, "read-only"},
	} {
		code, body := apiDo(t, c.method, base, c.path, "", c.body)
		if code != c.code || !strings.Contains(string(body), c.msg) {
			t.Errorf("%s %s: %d %s, want %d and %q", c.method, c.path, code, body, c.code, c.msg)
		}
	}
	// An owned topic: node 1 subscribes to node 0's "signed"; node 2's
	// unsigned publish to the same topic id is not delivered, node 0's
	// signed one is.
	owned := events(t, ctx, dn.nodes[1].api.Addr(), "signed", "?owner="+dn.nodes[0].host.ID().String())
	waitInTree(t, dn.nodes[1].api.Addr())
	ownedID := multicast.OwnedTopicID(dn.nodes[0].node.ID(), "signed")
	if err := dn.nodes[2].node.PublishID(ctx, ownedID, []byte("forged")); err != nil {
		t.Fatal(err)
	}
	if code, so, se := runCmd("publish", "--api", base, "--signed", "signed", "genuine"); code != 0 || !strings.Contains(so, ownedID.String()+", signed") {
		t.Fatalf("pastry publish --signed: %d %q %q", code, so, se)
	}
	select {
	case ev := <-owned:
		if ev.Text != "genuine" {
			t.Fatalf("owned topic delivered %+v, want only the owner's message", ev)
		}
	case <-ctx.Done():
		t.Fatal("owned topic: nothing delivered")
	}
	if code, so, se := runCmd("publish", "--api", base, "--json", "a b/c%", "x"); code != 0 || !strings.Contains(so, `"topic": "a b/c%"`) ||
		!strings.Contains(so, multicast.TopicID("a b/c%").String()) {
		t.Errorf("a topic name to escape: %d %q %q", code, so, se)
	}
	if code, _, se := runCmd("subscribe", "--api", base, "--owner", "nope", "chat"); code != 2 || !strings.Contains(se, "not a peer ID") {
		t.Errorf("subscribe --owner nope: %d %q", code, se)
	}
	if code, _, se := runCmd("publish", "--api", base, "chat"); code != 2 || !strings.Contains(se, "missing argument") {
		t.Errorf("publish without a message: %d %q", code, se)
	}
	if code, _, se := runCmd("subscribe", "--api", base, "--count", "-1", "chat"); code != 2 || !strings.Contains(se, "must not be negative") {
		t.Errorf("subscribe --count -1: %d %q", code, se)
	}
	cancel()
}

// Writes need the token like every request once one is set.
func TestAPITopicsToken(t *testing.T) {
	dn := startTestNet(t, 1)
	const token = "s3cret-token-0123456789"
	a, err := newAPIServer(dn.nodes[0].node, apiConfig{Token: token, Logger: newLogger(io.Discard, 0)})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer a.Close(context.Background())
	for _, tok := range []string{"", "wrong"} {
		if code, _ := apiDo(t, "POST", a.Addr(), "/v1/topics/chat", tok, []byte("x")); code != http.StatusUnauthorized {
			t.Errorf("publish with token %q: %d", tok, code)
		}
		if code, _ := apiDo(t, "GET", a.Addr(), "/v1/topics/chat/events", tok, nil); code != http.StatusUnauthorized {
			t.Errorf("events with token %q: %d", tok, code)
		}
	}
	if code, body := apiDo(t, "POST", a.Addr(), "/v1/topics/chat", token, []byte("x")); code != http.StatusAccepted {
		t.Errorf("publish with the token: %d %s", code, body)
	}
	code, _, se := runCmd("publish", "--api", a.Addr(), "chat", "x")
	if code != 1 || !strings.Contains(se, "refused the token") {
		t.Errorf("pastry publish without the token: %d %q", code, se)
	}
}
