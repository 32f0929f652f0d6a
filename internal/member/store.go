package member

import (
	"context"
	"fmt"

	"github.com/eleven-am/graft/internal/disk"
	"github.com/eleven-am/graft/internal/engine"
	"github.com/eleven-am/graft/internal/route"
	"github.com/eleven-am/graft/internal/wf"
	"github.com/eleven-am/graft/shards"
)

// store adapts the Member's shards to the engine's Store.
type store Member

var _ engine.Store = (*store)(nil)

// Apply proposes c and decodes its result. Below the disk guard's hard
// floor it refuses with errs.ErrStorageFull instead; the executor retries.
func (s *store) Apply(ctx context.Context, shard uint64, c *wf.Command) (wf.Result, error) {
	return (*Member)(s).apply(ctx, shard, c, disk.Step)
}

// Active reads the shard replica's active workflows from memory.
func (s *store) Active(shard uint64) ([]wf.View, error) {
	m := (*Member)(s)
	m.mu.Lock()
	l := m.logics[shard]
	m.mu.Unlock()
	if l == nil {
		return nil, fmt.Errorf("%w: shard %d", shards.ErrShardNotFound, shard)
	}
	return l.Active(), nil
}

// router returns the routing of one call: a snapshot of the member's
// shards, network, engine and disk guard.
func (m *Member) router() route.Router {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := route.Router{Host: m.host, Net: m.netLocked(), Disk: m.disk, Clustered: m.cfg.Clustered, Stamp: m.proposerStamp}
	if m.engine != nil {
		r.Claims = m.engine
	}
	return r
}

// apply proposes c to shard (see route.Router.Apply).
func (m *Member) apply(ctx context.Context, shard uint64, c *wf.Command, class disk.Class) (wf.Result, error) {
	return m.router().Apply(ctx, shard, c, class)
}

// read answers q about shard while the member runs (see route.Router.Read).
func (m *Member) read(ctx context.Context, shard uint64, q wf.Query, v any) error {
	if _, err := m.running(); err != nil {
		return err
	}
	return m.router().Read(ctx, shard, q, v)
}

// diskGuard returns the member's disk guard; nil when the check is
// disabled or before Start.
func (m *Member) diskGuard() *disk.Guard {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.disk
}
