package client

import (
	"context"

	"github.com/ringmq/ringmq/proto"
)

// listAllGroups asks every broker the metadata names for the groups it
// coordinates (one node: the bootstrap node) and merges the answers. A
// broker that cannot be reached is left out; if none can, the error is
// returned.
func (a *Admin) listAllGroups(ctx context.Context) ([]proto.GroupInfo, error) {
	var resp *proto.ListGroupsResponse
	if _, err := a.cl.refresh(ctx); err != nil {
		return nil, err
	}
	a.cl.mu.Lock()
	ids := make([]uint32, 0, len(a.cl.brokers))
	for id := range a.cl.brokers {
		ids = append(ids, id)
	}
	a.cl.mu.Unlock()
	if len(ids) <= 1 {
		err := a.anyNode(ctx, true, func(c *Conn) (err error) {
			resp, err = c.ListGroups(ctx, &proto.ListGroupsRequest{})
			return err
		})
		if err != nil {
			return nil, err
		}
		return resp.Groups, nil
	}
	var out []proto.GroupInfo
	seen := map[string]bool{}
	var lastErr error
	answered := 0
	for _, id := range ids {
		c, err := a.cl.conn(ctx, connKey{id, anyShard})
		if err == nil {
			resp, err = c.ListGroups(ctx, &proto.ListGroupsRequest{})
		}
		if err != nil {
			lastErr = err
			continue
		}
		answered++
		for _, g := range resp.Groups {
			if !seen[g.Name] {
				seen[g.Name] = true
				out = append(out, g)
			}
		}
	}
	if answered == 0 {
		return nil, lastErr
	}
	return out, nil
}
