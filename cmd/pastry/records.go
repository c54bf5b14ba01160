package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pastrynet/pastry"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/replication"
)

// Records over the HTTP API (PAST, package replication):
//
//	PUT    /v1/records/NAME[?expiry=UNIX]  this node's record NAME, signed, as its next version
//	DELETE /v1/records/NAME                a signed tombstone as its next version
//	GET    /v1/records/NAME[?owner=PEERID] the record NAME of this node (or of owner)
//	POST   /v1/objects                     an immutable object; answers its key
//	GET    /v1/keys/KEY                    the record or object at KEY (32 hex digits)
const (
	recordsPrefix = "/v1/records/"
	objectsPath   = "/v1/objects"
	keysPrefix    = "/v1/keys/"
	apiMaxRecord  = 1 << 20 // replication's default value limit
)

type (
	receiptJSON struct {
		NodeID string `json:"node_id"`
		PeerID string `json:"peer_id"`
		Stored int64  `json:"stored"`
	}
	putJSON struct {
		Key      string        `json:"key"`
		Version  uint64        `json:"version"`
		Receipts []receiptJSON `json:"receipts"`
	}
	recordJSON struct {
		Key       string `json:"key"`
		Kind      string `json:"kind"`
		Owner     string `json:"owner,omitempty"` // peer ID
		Name      string `json:"name,omitempty"`
		Version   uint64 `json:"version,omitempty"`
		Expiry    int64  `json:"expiry,omitempty"`
		Tombstone bool   `json:"tombstone,omitempty"`
		Value     string `json:"value"` // base64
		Text      string `json:"text,omitempty"`
		Answers   int    `json:"answers"`
		Repaired  int    `json:"repaired"`
	}
)

func checkRecordName(name string) error {
	switch {
	case name == "":
		return errors.New("empty record name")
	case len(name) > replication.MaxNameLen:
		return fmt.Errorf("record name of %d bytes: at most %d", len(name), replication.MaxNameLen)
	}
	return nil
}

func toPutJSON(res replication.PutResult) putJSON {
	out := putJSON{Key: res.Key.String(), Version: res.Version, Receipts: []receiptJSON{}}
	for _, rc := range res.Receipts {
		out.Receipts = append(out.Receipts, receiptJSON{NodeID: rc.Node.ID.String(), PeerID: peer.ID(rc.Node.Addr).String(), Stored: rc.Stored})
	}
	return out
}

func toRecordJSON(res replication.GetResult) recordJSON {
	r := res.Record
	out := recordJSON{Key: r.Key().String(), Kind: r.Kind.String(), Name: string(r.Name), Version: r.Version, Expiry: r.Expiry,
		Tombstone: r.Tombstone, Value: base64.StdEncoding.EncodeToString(r.Value), Answers: res.Answers, Repaired: res.Repaired}
	if utf8.Valid(r.Value) {
		out.Text = string(r.Value)
	}
	if len(r.Owner) > 0 {
		if pub, err := crypto.UnmarshalEd25519PublicKey(r.Owner); err == nil {
			if p, err := peer.IDFromPublicKey(pub); err == nil {
				out.Owner = p.String()
			}
		}
	}
	return out
}

// recordError answers a failed write or read.
func recordError(w http.ResponseWriter, what string, err error) {
	switch {
	case errors.Is(err, pastry.ErrNotFound):
		writeError(w, http.StatusNotFound, "%s: %v", what, err)
	case errors.Is(err, replication.ErrStale), errors.Is(err, replication.ErrConflict):
		writeError(w, http.StatusConflict, "%s: %v", what, err)
	case errors.Is(err, replication.ErrTooLarge), errors.Is(err, replication.ErrMalformed):
		writeError(w, http.StatusBadRequest, "%s: %v", what, err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, replication.ErrTimeout):
		writeError(w, http.StatusGatewayTimeout, "%s: %v", what, err)
	case errors.Is(err, replication.ErrCapacity), errors.Is(err, replication.ErrQuota):
		writeError(w, http.StatusInsufficientStorage, "%s: %v", what, err)
	default:
		writeError(w, http.StatusServiceUnavailable, "%s: %v", what, err)
	}
}

// handleRecords serves /v1/records/NAME.
func (a *apiServer) handleRecords(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, recordsPrefix)
	if err := checkRecordName(name); err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	q := r.URL.Query()
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.LookupTimeout)
	defer cancel()
	switch r.Method {
	case http.MethodPut:
		var expiry int64
		for k, v := range q {
			e, err := strconv.ParseInt(v[0], 10, 64)
			if k != "expiry" || len(v) != 1 || err != nil || e < 0 {
				writeError(w, http.StatusBadRequest, "query %q: writing takes only expiry=UNIX_SECONDS", k)
				return
			}
			expiry = e
		}
		value, err := io.ReadAll(r.Body)
		if err != nil {
			writeError(w, http.StatusRequestEntityTooLarge, "value too large: at most %d bytes", apiMaxRecord)
			return
		}
		res, err := a.node.Put(ctx, name, value, expiry)
		if err != nil {
			recordError(w, "put "+name, err)
			return
		}
		writeJSON(w, http.StatusOK, toPutJSON(res))
	case http.MethodDelete:
		if !exactQuery(w, r) {
			return
		}
		res, err := a.node.Delete(ctx, name)
		if err != nil {
			recordError(w, "delete "+name, err)
			return
		}
		writeJSON(w, http.StatusOK, toPutJSON(res))
	case http.MethodGet, http.MethodHead:
		owner, ok := ownerQuery(w, r, "reading")
		if !ok {
			return
		}
		var key id.ID
		if owner != "" {
			raw, err := ownerKey(owner)
			if err != nil {
				writeError(w, http.StatusBadRequest, "owner %s: not an Ed25519 peer ID: %v", owner, err)
				return
			}
			key = replication.MutableKey(raw, []byte(name))
		}
		if key == (id.ID{}) {
			var err error
			if key, err = a.node.RecordKey(name); err != nil {
				writeError(w, http.StatusServiceUnavailable, "%v", err)
				return
			}
		}
		a.getKey(ctx, w, key)
	default:
		w.Header().Set("Allow", "GET, PUT, DELETE")
		writeError(w, http.StatusMethodNotAllowed, "%s: GET, PUT or DELETE", r.URL.Path)
	}
}

func (a *apiServer) getKey(ctx context.Context, w http.ResponseWriter, key id.ID) {
	res, err := a.node.GetRecord(ctx, key)
	if err != nil {
		recordError(w, "get "+key.String(), err)
		return
	}
	writeJSON(w, http.StatusOK, toRecordJSON(res))
}

// handleKeys serves GET /v1/keys/KEY.
func (a *apiServer) handleKeys(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET")
		writeError(w, http.StatusMethodNotAllowed, "%s: GET", r.URL.Path)
		return
	}
	if !exactQuery(w, r) {
		return
	}
	key, err := parseKey(strings.TrimPrefix(r.URL.Path, keysPrefix))
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.LookupTimeout)
	defer cancel()
	a.getKey(ctx, w, key)
}

// handleObjects serves POST /v1/objects.
func (a *apiServer) handleObjects(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeError(w, http.StatusMethodNotAllowed, "%s: POST the object; read it with GET %sKEY", objectsPath, keysPrefix)
		return
	}
	if !exactQuery(w, r) {
		return
	}
	value, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "object too large: at most %d bytes", apiMaxRecord)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.LookupTimeout)
	defer cancel()
	res, err := a.node.PutImmutable(ctx, value)
	if err != nil {
		recordError(w, "put object", err)
		return
	}
	writeJSON(w, http.StatusOK, toPutJSON(res))
}

// writes reports whether r is one of the API's writes (and its body
// limit).
func writes(r *http.Request) (bool, int64) {
	switch {
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, topicsPathPrefix):
		return true, apiMaxPublish
	case (r.Method == http.MethodPut || r.Method == http.MethodDelete) && strings.HasPrefix(r.URL.Path, recordsPrefix),
		r.Method == http.MethodPost && r.URL.Path == objectsPath:
		return true, apiMaxRecord
	}
	return false, apiMaxBody
}

func runPut(args []string, stdout, stderr io.Writer) error {
	fs, cf := newClientFlagSet("put", " NAME FILE|-  or  pastry put --immutable FILE|-", "Stores FILE (or standard input) as the node's record NAME, signed with its key, as\nthe next version; with --immutable, as an immutable object, and prints its key.", true, os.Getenv, stderr)
	immutable := fs.Bool("immutable", false, "store an immutable object (its key is the hash of its content)")
	expiry := fs.Int64("expiry", 0, "unix second from which the record expires (0: never)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	want := 2
	if *immutable {
		want = 1
	}
	if fs.NArg() != want {
		return usageError(fs, "want %d arguments, got %d", want, fs.NArg())
	}
	file := fs.Arg(want - 1)
	var data []byte
	var err error
	if file == "-" {
		data, err = io.ReadAll(io.LimitReader(os.Stdin, apiMaxRecord+1))
	} else {
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", file, err)
	}
	if len(data) > apiMaxRecord {
		return fmt.Errorf("value of %d bytes: at most %d", len(data), apiMaxRecord)
	}
	path := objectsPath
	method := http.MethodPost
	if !*immutable {
		if err := checkRecordName(fs.Arg(0)); err != nil {
			return err
		}
		path, method = recordsPrefix+url.PathEscape(fs.Arg(0)), http.MethodPut
		if *expiry != 0 {
			path += "?expiry=" + strconv.FormatInt(*expiry, 10)
		}
	}
	return clientDo(cf, method, path, data, stdout, func(pj *putJSON) string {
		if *immutable {
			return pj.Key
		}
		return fmt.Sprintf("stored %s version %d (key %s): %d replicas signed receipts", fs.Arg(0), pj.Version, pj.Key, len(pj.Receipts))
	})
}

func runRm(args []string, stdout, stderr io.Writer) error {
	fs, cf := newClientFlagSet("rm", " NAME", "Deletes the node's record NAME: a signed tombstone as its next version.", true, os.Getenv, stderr)
	if err := parseClientArgs(fs, args, 1); err != nil {
		return err
	}
	if err := checkRecordName(fs.Arg(0)); err != nil {
		return err
	}
	return clientDo(cf, http.MethodDelete, recordsPrefix+url.PathEscape(fs.Arg(0)), nil, stdout, func(pj *putJSON) string {
		return fmt.Sprintf("deleted %s (version %d, key %s)", fs.Arg(0), pj.Version, pj.Key)
	})
}

// clientDo sends a write and prints its answer (line) or, with --json, the
// API's JSON.
func clientDo(cf *clientFlags, method, path string, body []byte, stdout io.Writer, line func(*putJSON) string) error {
	c, ctx, cancel, err := cf.connect()
	if err != nil {
		return err
	}
	defer cancel()
	var pj putJSON
	raw, err := c.do(ctx, method, path, body, &pj)
	if err != nil {
		return err
	}
	if cf.json {
		return printRaw(stdout, raw)
	}
	_, err = fmt.Fprintln(stdout, line(&pj))
	return err
}

func runGet(args []string, stdout, stderr io.Writer) error {
	fs, cf := newClientFlagSet("get", " NAME|KEY", "Prints the value of the node's record NAME (or of --owner's), or of the record or\nobject at KEY (32 hex digits), as stored; --json prints the whole record.", true, os.Getenv, stderr)
	owner := fs.String("owner", "", "the peer ID whose record NAME to read (default: the node's own)")
	if err := parseClientArgs(fs, args, 1); err != nil {
		return err
	}
	arg := fs.Arg(0)
	path := recordsPrefix + url.PathEscape(arg)
	if _, err := id.Parse(arg); err == nil && *owner == "" {
		path = keysPrefix + arg
	} else if err := checkRecordName(arg); err != nil {
		return err
	}
	if *owner != "" {
		if _, err := peer.Decode(*owner); err != nil {
			return usageError(fs, "--owner %q: not a peer ID", *owner)
		}
		path += "?owner=" + url.QueryEscape(*owner)
	}
	c, ctx, cancel, err := cf.connect()
	if err != nil {
		return err
	}
	defer cancel()
	var rj recordJSON
	raw, err := c.do(ctx, http.MethodGet, path, nil, &rj)
	if err != nil {
		return err
	}
	if cf.json {
		return printRaw(stdout, raw)
	}
	if rj.Tombstone {
		return fmt.Errorf("%s was deleted (version %d)", arg, rj.Version)
	}
	v, err := base64.StdEncoding.DecodeString(rj.Value)
	if err != nil {
		return fmt.Errorf("the API sent a value that is not base64: %v", err)
	}
	_, err = stdout.Write(v)
	return err
}

// ownerKey is the raw Ed25519 public key a peer ID embeds.
func ownerKey(p peer.ID) ([]byte, error) {
	pub, err := p.ExtractPublicKey()
	if err != nil {
		return nil, err
	}
	return pub.Raw()
}
