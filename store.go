package graft

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/eleven-am/graft/executor"
	"github.com/eleven-am/graft/internal/wf"
	"github.com/eleven-am/graft/shards"
)

// store adapts the Manager's shards to the executor's Store.
type store Manager

var _ executor.Store = (*store)(nil)

// Apply proposes c and decodes its result.
func (s *store) Apply(ctx context.Context, shard uint64, c *wf.Command) (wf.Result, error) {
	return (*Manager)(s).apply(ctx, shard, c)
}

// Active reads the shard replica's active workflows from memory.
func (s *store) Active(shard uint64) ([]wf.View, error) {
	m := (*Manager)(s)
	m.mu.Lock()
	l := m.logics[shard]
	m.mu.Unlock()
	if l == nil {
		return nil, fmt.Errorf("%w: shard %d", shards.ErrShardNotFound, shard)
	}
	return l.Active(), nil
}

func (m *Manager) apply(ctx context.Context, shard uint64, c *wf.Command) (wf.Result, error) {
	m.mu.Lock()
	h := m.host
	m.mu.Unlock()
	if h == nil {
		return wf.Result{}, ErrClosed
	}
	raw, err := wf.EncodeCommand(c)
	if err != nil {
		return wf.Result{}, fmt.Errorf("encoding %s command: %w", c.Op, err)
	}
	var out []byte
	if m.hosts(shard) {
		out, err = h.Propose(ctx, shard, raw)
		err = translate(err)
	} else {
		out, err = m.forward(ctx, shard, rpcApply, raw)
	}
	if err != nil {
		return wf.Result{}, err
	}
	return wf.DecodeResult(out)
}

func (m *Manager) read(ctx context.Context, shard uint64, q wf.Query, v any) error {
	h, err := m.running()
	if err != nil {
		return err
	}
	var out []byte
	if m.hosts(shard) {
		out, err = h.Read(ctx, shard, wf.EncodeQuery(q))
		err = translate(err)
	} else {
		out, err = m.forward(ctx, shard, rpcRead, wf.EncodeQuery(q))
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(out, v); err != nil {
		return fmt.Errorf("decoding %s answer: %w", q.Op, err)
	}
	return nil
}
