package member

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/eleven-am/graft/internal/disk"
	"github.com/eleven-am/graft/internal/engine"
	"github.com/eleven-am/graft/internal/errs"
	"github.com/eleven-am/graft/internal/wf"
	"github.com/eleven-am/graft/internal/wire"
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

// apply proposes c to shard (here or through the member that hosts it),
// charging its estimated disk bytes against class's floor first (see
// diskGuard.reserve), and decodes the result.
func (m *Member) apply(ctx context.Context, shard uint64, c *wf.Command, class disk.Class) (wf.Result, error) {
	m.mu.Lock()
	h := m.host
	m.mu.Unlock()
	if h == nil {
		return wf.Result{}, errs.ErrClosed
	}
	raw, err := wf.EncodeCommand(c)
	if err != nil {
		return wf.Result{}, fmt.Errorf("encoding %s command: %w", c.Op, err)
	}
	release, err := m.diskGuard().Reserve(time.Now(), disk.CommandBytes(c.Op, raw), class)
	if err != nil {
		return wf.Result{}, err
	}
	defer release()
	out, err := m.route(ctx, h, shard, wire.MethodApply, raw, func() ([]byte, error) { return h.Propose(ctx, shard, raw) })
	if err != nil {
		return wf.Result{}, err
	}
	return wf.DecodeResult(out)
}

func (m *Member) read(ctx context.Context, shard uint64, q wf.Query, v any) error {
	h, err := m.running()
	if err != nil {
		return err
	}
	query := wf.EncodeQuery(q)
	out, err := m.route(ctx, h, shard, wire.MethodRead, query, func() ([]byte, error) { return h.Read(ctx, shard, query) })
	if err != nil {
		return err
	}
	if err := json.Unmarshal(out, v); err != nil {
		return fmt.Errorf("decoding %s answer: %w", q.Op, err)
	}
	return nil
}

// route runs a call about shard on this member's replica (local) when it has
// one, and otherwise forwards it to a member that does. In a cluster, a
// local replica that knows no leader (an election, a partition, or a
// replica removed while this member was away) first lets the other members
// try, and a replica dropped during the call hands it over to them.
func (m *Member) route(ctx context.Context, h *shards.Host, shard uint64, method string, body []byte, local func() ([]byte, error)) ([]byte, error) {
	if !m.hosts(shard) {
		return m.net().Forward(ctx, shard, method, body)
	}
	clustered := m.cfg.Clustered
	if _, ok := h.LeaderID(shard); !ok && clustered {
		if out, err := m.net().Forward(ctx, shard, method, body); err == nil || !errs.IsRetryable(err) {
			return out, err
		}
	}
	out, err := local()
	if errors.Is(err, shards.ErrShardNotFound) && clustered {
		return m.net().Forward(ctx, shard, method, body)
	}
	return out, errs.Translate(err)
}

// startAtLeader sends a start command to the member leading its shard,
// when that is another member and this one knows it (it holds a replica):
// the leader claims the first steps in the same command (see applyHere).
// Any error means the caller proposes the command itself; the command's
// nonce makes a start that committed anyway harmless.
func (m *Member) startAtLeader(ctx context.Context, shard uint64, cmd *wf.Command) (wf.Result, error) {
	n := m.net()
	addr := n.LeaderOf(shard)
	if addr == "" || m.leads(shard) {
		return wf.Result{}, errNoLeaderKnown
	}
	raw, err := wf.EncodeCommand(cmd)
	if err != nil {
		return wf.Result{}, err
	}
	release, err := m.diskGuard().Reserve(time.Now(), disk.CommandBytes(cmd.Op, raw), disk.Intake)
	if err != nil {
		return wf.Result{}, err
	}
	defer release()
	out, err := n.Call(ctx, addr, wire.MethodApply, wire.ShardPayload(shard, raw))
	if err != nil {
		return wf.Result{}, wire.FromRemote(err)
	}
	return wf.DecodeResult(out)
}

// errNoLeaderKnown: no other member is known to lead the shard.
var errNoLeaderKnown = errors.New("no other member known to lead the shard")

// diskGuard returns the member's disk guard; nil when the check is
// disabled or before Start.
func (m *Member) diskGuard() *disk.Guard {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.disk
}
