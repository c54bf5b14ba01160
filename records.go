package pastry

import (
	"context"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/replication"
)

// ErrNoKey: the node holds no private key to sign records with (a node on
// a transport other than libp2p).
var ErrNoKey = errors.New("pastry: the node holds no signing key")

// PutRecord writes rec (a signed mutable record or an immutable object;
// package replication) to the K nodes closest to its key, and returns
// once W of them have durably stored it, with their signed receipts.
func (n *Node) PutRecord(ctx context.Context, rec *replication.Record) (replication.PutResult, error) {
	return await(n, ctx, "put "+rec.Key().Short(), func(done func(replication.PutResult, error)) error {
		return n.past.Put(rec, done)
	})
}

// PutRecordWith is PutRecord with one write's options: K replicas sent
// the record at once (at most the node's), W receipts awaited.
func (n *Node) PutRecordWith(ctx context.Context, rec *replication.Record, o replication.WriteOptions) (replication.PutResult, error) {
	return await(n, ctx, "put "+rec.Key().Short(), func(done func(replication.PutResult, error)) error {
		return n.past.PutWith(rec, o, done)
	})
}

// GetRecord reads key from R of its replicas and returns the newest valid
// version; ErrNotFound when none holds one.
func (n *Node) GetRecord(ctx context.Context, key id.ID) (replication.GetResult, error) {
	return n.GetRecordWith(ctx, key, replication.ReadOptions{})
}

// GetRecordWith is GetRecord with one read's options: R answers awaited,
// and Stale to accept a mutable record cached along the route, possibly
// older than the replicas' (immutable objects come from caches always).
func (n *Node) GetRecordWith(ctx context.Context, key id.ID, o replication.ReadOptions) (replication.GetResult, error) {
	res, err := await(n, ctx, "get "+key.Short(), func(done func(replication.GetResult, error)) error {
		return n.past.GetWith(key, o, done)
	})
	if err == nil && res.Record == nil {
		return res, fmt.Errorf("%w: %s", ErrNotFound, key.Short())
	}
	return res, err
}

// await starts an application's operation on the loop and waits for the
// result it reports through done, or for ctx, or for the node to stop.
func await[T any](n *Node, ctx context.Context, what string, start func(done func(T, error)) error) (T, error) {
	type reply struct {
		res T
		err error
	}
	ch := make(chan reply, 1)
	var zero T
	var err error
	if cerr := n.call(ctx, func() { err = start(func(r T, e error) { ch <- reply{r, e} }) }); cerr != nil {
		return zero, fmt.Errorf("%s: %w", what, cerr)
	}
	if err != nil {
		return zero, err
	}
	select {
	case r := <-ch:
		return r.res, r.err
	case <-ctx.Done():
		return zero, fmt.Errorf("%s: %w", what, ctx.Err())
	case <-n.quit:
		return zero, ErrClosed
	}
}

// ErrNotFound: no replica that answered holds the record.
var ErrNotFound = errors.New("pastry: no such record")

// signingKey is the host's private key (libp2p), which signs this node's
// records.
func (n *Node) signingKey() (crypto.PrivKey, error) {
	if n.host == nil {
		return nil, ErrNoKey
	}
	k := n.host.Peerstore().PrivKey(n.host.ID())
	if k == nil {
		return nil, ErrNoKey
	}
	return k, nil
}

// RecordKey is the key of this node's record name.
func (n *Node) RecordKey(name string) (id.ID, error) {
	k, err := n.signingKey()
	if err != nil {
		return id.ID{}, err
	}
	pub, err := k.GetPublic().Raw()
	if err != nil {
		return id.ID{}, err
	}
	return replication.MutableKey(pub, []byte(name)), nil
}

// Put stores value under this node's record name, signed with its key, as
// the version after the newest one the replicas hold (1 for a new name).
// expiry is a unix second, or 0 for none.
func (n *Node) Put(ctx context.Context, name string, value []byte, expiry int64) (replication.PutResult, error) {
	return n.putNamed(ctx, name, func(k crypto.PrivKey, v uint64) (*replication.Record, error) {
		return replication.Sign(k, []byte(name), value, v, expiry)
	})
}

// Delete writes a signed tombstone for this node's record name, as its
// next version.
func (n *Node) Delete(ctx context.Context, name string) (replication.PutResult, error) {
	return n.putNamed(ctx, name, func(k crypto.PrivKey, v uint64) (*replication.Record, error) {
		return replication.SignTombstone(k, []byte(name), v, 0)
	})
}

func (n *Node) putNamed(ctx context.Context, name string, build func(crypto.PrivKey, uint64) (*replication.Record, error)) (replication.PutResult, error) {
	k, err := n.signingKey()
	if err != nil {
		return replication.PutResult{}, err
	}
	key, err := n.RecordKey(name)
	if err != nil {
		return replication.PutResult{}, err
	}
	version := uint64(1)
	cur, err := n.GetRecord(ctx, key)
	switch {
	case err == nil:
		version = cur.Record.Version + 1
	case !errors.Is(err, ErrNotFound):
		return replication.PutResult{}, fmt.Errorf("put %q: read the current version: %w", name, err)
	}
	rec, err := build(k, version)
	if err != nil {
		return replication.PutResult{}, err
	}
	return n.PutRecord(ctx, rec)
}

// PutImmutable stores value as an immutable object; its key is the hash of
// value (replication.ImmutableKey).
func (n *Node) PutImmutable(ctx context.Context, value []byte) (replication.PutResult, error) {
	return n.PutRecord(ctx, replication.NewImmutable(value))
}
