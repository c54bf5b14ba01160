package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pastrynet/pastry"
	"github.com/pastrynet/pastry/core"
)

// joinSettleTimeout bounds how long joinThrough waits for a join the
// runtime reported failed but the core is still carrying out: the core's
// own give-up time under the node's config, JoinTimeout x (JoinRetries+1),
// with a margin.
func joinSettleTimeout(c core.Config) time.Duration {
	return c.JoinTimeout*time.Duration(c.JoinRetries+1) + 5*time.Second
}

// errStillJoining: the core is still joining and cannot start another join.
var errStillJoining = errors.New("the node is still joining through an earlier bootstrap node")

// joinThrough joins n through ai and returns once it has joined, or with
// an error once the core has given up (then another node may be tried).
//
// Node.Join may report "no answer to the join" while the core is in fact
// still joining: it polls the published status, which a busy event loop
// publishes only after its next flush, so an early poll sees the initial
// idle status (seen with 200 nodes on a loaded 2-core machine). So after
// a failure this waits for the core's own verdict.
func joinThrough(ctx context.Context, n *pastry.Node, ai peer.AddrInfo) error {
	err := n.Join(ctx, ai)
	if err == nil || ctx.Err() != nil {
		return err
	}
	wait := time.NewTimer(joinSettleTimeout(n.Config()))
	defer wait.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		switch n.Status() {
		case core.StatusJoined:
			return nil
		case core.StatusIdle:
			return err
		case core.StatusLeft:
			return fmt.Errorf("%w (the node has left)", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wait.C:
			return fmt.Errorf("%w: %w", err, errStillJoining)
		case <-tick.C:
		}
	}
}
