package client

import (
	"context"
	"errors"
	"time"

	"github.com/ringmq/ringmq/proto"
)

// # Group coordinators
//
// A group's requests (join, heartbeat, leave, commits, offset fetches,
// describe, delete, reset) go to its coordinator: the leader of the
// group's partition of the internal topic __consumer_offsets, which any
// node names (FindCoordinator). The answer is cached per group; a
// refusal that says the coordinator moved (NOT_COORDINATOR) or is not
// available yet (COORDINATOR_NOT_AVAILABLE: its partition has no leader,
// or is loading), or a lost connection, drops the cached answer and the
// request is retried on the coordinator found again, backing off from
// 50 ms to 1 s, until its context ends. A server without FindCoordinator
// (or one that names no brokers) coordinates every group behind the
// bootstrap connection.

// coordinator returns a connection to group's coordinator.
func (cl *cluster) coordinator(ctx context.Context, group string) (*Conn, error) {
	cl.mu.Lock()
	id, ok := cl.coords[group]
	cl.mu.Unlock()
	if ok {
		return cl.conn(ctx, connKey{id, anyShard})
	}
	c, err := cl.conn(ctx, bootstrapKey)
	if err != nil {
		return nil, err
	}
	resp, err := c.FindCoordinator(ctx, &proto.FindCoordinatorRequest{Group: group})
	switch {
	case errors.Is(err, proto.UnsupportedAPI):
		id = bootstrap
	case err != nil:
		return nil, err
	case resp.NodeID == proto.NoNode || resp.Addr == "":
		id = bootstrap
	default:
		id = resp.NodeID
	}
	cl.mu.Lock()
	if id != bootstrap {
		if _, known := cl.brokers[id]; !known {
			cl.brokers[id] = advertised(resp.Addr, c.Addr(), len(cl.brokers)+1)
		}
	}
	cl.coords[group] = id
	cl.mu.Unlock()
	if id == bootstrap {
		return c, nil
	}
	return cl.conn(ctx, connKey{id, anyShard})
}

// forgetCoordinator drops group's cached coordinator.
func (cl *cluster) forgetCoordinator(group string) {
	cl.mu.Lock()
	delete(cl.coords, group)
	cl.mu.Unlock()
}

// coordinatorMoved reports whether err means group requests must find
// the coordinator again.
func coordinatorMoved(err error) bool {
	return errors.Is(err, proto.NotCoordinator) || errors.Is(err, proto.CoordinatorNotAvailable) ||
		errors.Is(err, ErrConnectionLost)
}

// groupCall runs call on the connection to group's coordinator, finding
// the coordinator again and retrying while the answer says it moved, is
// not available yet, or the connection was lost, until ctx ends (the
// last error is returned then).
func (cl *cluster) groupCall(ctx context.Context, group string, call func(*Conn) error) error {
	backoff := 50 * time.Millisecond
	for {
		c, err := cl.coordinator(ctx, group)
		if err == nil {
			err = call(c)
		}
		if err == nil || !coordinatorMoved(err) {
			return err
		}
		cl.forgetCoordinator(group)
		if sleepCtx(ctx, backoff) != nil {
			return err
		}
		backoff = min(2*backoff, time.Second)
	}
}
