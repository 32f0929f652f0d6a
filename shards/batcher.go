package shards

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lni/dragonboat/v4"
)

// errDropped marks a proposal that never entered the raft log (no leader,
// shard not ready, system busy), so Propose may safely retry it.
var errDropped = fmt.Errorf("%w: proposal dropped", ErrNotReady)

// errAmbiguous marks an attempt that timed out: it may or may not commit.
var errAmbiguous = fmt.Errorf("%w: proposal attempt timed out; it may still commit", ErrTimeout)

// errDroppedShard is returned to callers waiting on a replica that
// DropShard removed from this Host.
func errDroppedShard(shardID uint64) error {
	return fmt.Errorf("%w: %d (replica dropped from this member)", ErrShardNotFound, shardID)
}

// request is one Propose call waiting for its command's result.
type request struct {
	ctx  context.Context
	cmd  []byte
	done chan result // buffered: the batcher never blocks on it
}

type result struct {
	data []byte
	err  error
}

// Propose replicates cmd through shardID's raft log and returns the result of
// Logic.Apply for it. Concurrent calls are group-committed: the shard's
// batcher packs queued commands into one proposal of up to MaxBatchBytes and
// keeps up to MaxInflight proposals in flight.
//
// Proposals dropped before entering the raft log (for example while the
// shard has no leader) are retried with backoff until ctx ends, and so are
// attempts that time out (after a second or ten election timeouts)
// because the leader they were forwarded to died: such an attempt may
// still commit, so a command can be applied more than once and Logic must
// treat a repeated command as a no-op (or answer it as the first). If ctx ends
// first, Propose returns ErrTimeout (deadline) or the wrapped ctx error
// (cancellation); the command may nevertheless have been, or later be,
// committed and applied. It returns ErrShardNotFound for a shard not started
// with StartShard and ErrClosed after Close.
func (h *Host) Propose(ctx context.Context, shardID uint64, cmd []byte) ([]byte, error) {
	s, err := h.shard(shardID)
	if err != nil {
		return nil, err
	}
	bo := newBackoff()
	var (
		attempts     int
		firstFailure time.Time
		warned       bool
	)
	for {
		req := &request{ctx: ctx, cmd: cmd, done: make(chan result, 1)}
		select {
		case s.queue <- req:
		case <-ctx.Done():
			return nil, ctxError(ctx)
		case <-h.stop:
			return nil, ErrClosed
		case <-s.stop:
			return nil, errDroppedShard(shardID)
		}
		var r result
		select {
		case r = <-req.done:
		case <-ctx.Done():
			return nil, ctxError(ctx)
		case <-h.stop:
			return nil, ErrClosed
		case <-s.stop:
			// The command may have committed before the replica was
			// dropped; the caller retries it elsewhere (commands are
			// idempotent).
			return nil, errDroppedShard(shardID)
		}
		if r.err == nil {
			return r.data, nil
		}
		if !errors.Is(r.err, errDropped) && !errors.Is(r.err, errAmbiguous) {
			return nil, r.err
		}
		if attempts++; attempts == 1 {
			firstFailure = time.Now()
		} else if time.Since(firstFailure) > time.Second && !warned {
			warned = true
			h.log.Warn("proposal still not committed after retries", attrShard, shardID,
				"attempts", attempts, "last_error", r.err)
		}
		if err := h.sleep(ctx, bo.Next()); err != nil {
			return nil, err
		}
	}
}

// runBatcher is the shard's group-commit loop. It takes the first queued
// request, waits for an in-flight slot (more requests queue up meanwhile),
// then drains the queue into one proposal.
func (h *Host) runBatcher(s *shard) {
	var carry *request
	for {
		first := carry
		carry = nil
		if first == nil {
			select {
			case first = <-s.queue:
			case <-h.stop:
				return
			case <-s.stop:
				return
			}
		}
		select {
		case s.inflight <- struct{}{}:
		case <-h.stop:
			return
		case <-s.stop:
			return
		}
		var batch []*request
		size := 0
		add := func(r *request) {
			if r.ctx.Err() != nil { // caller is gone; do not commit its command
				r.done <- result{err: ctxError(r.ctx)}
				return
			}
			batch = append(batch, r)
			size += encodedSize(len(r.cmd))
		}
		add(first)
	drain:
		for size < h.cfg.MaxBatchBytes {
			select {
			case r := <-s.queue:
				if len(batch) > 0 && size+encodedSize(len(r.cmd)) > h.cfg.MaxBatchBytes {
					carry = r
					break drain
				}
				add(r)
			default:
				break drain
			}
		}
		if len(batch) == 0 {
			<-s.inflight
			continue
		}
		h.propose(s, batch)
	}
}

// propose hands one batch to Dragonboat and completes it on a tracked
// goroutine, so the batcher never waits for raft. It holds one in-flight slot,
// which the completion releases.
func (h *Host) propose(s *shard, batch []*request) {
	cmds := make([][]byte, len(batch))
	for i, r := range batch {
		cmds[i] = r.cmd
	}
	rs, err := h.nh.Propose(s.session, encodeBatch(cmds), h.proposalTimeout(batch))
	if err != nil {
		<-s.inflight
		fail(batch, proposeError(err))
		return
	}
	s.stats.proposals.Add(1)
	h.wg.Go(func() {
		defer func() { <-s.inflight }()
		select {
		case res := <-rs.AppliedC():
			h.complete(batch, res)
			rs.Release()
		case <-h.stop:
			// Pending callers return ErrClosed on their own.
		}
	})
}

// complete routes each command's result, or the proposal's failure, to its caller.
func (h *Host) complete(batch []*request, res dragonboat.RequestResult) {
	switch {
	case res.Completed():
		results, err := decodeBatch(res.GetResult().Data)
		if err == nil && len(results) != len(batch) {
			err = fmt.Errorf("%w: %d results for %d commands", errBadBatch, len(results), len(batch))
		}
		if err != nil {
			fail(batch, err)
			return
		}
		for i, r := range batch {
			r.done <- result{data: results[i]}
		}
	case res.Dropped():
		fail(batch, errDropped)
	case res.Timeout():
		// Its fate is unknown (e.g. forwarded to a leader that died):
		// propose again while the caller still waits. Commands must
		// therefore be idempotent; see Propose.
		fail(batch, errAmbiguous)
	case res.Terminated():
		// The replica stopped: the Host is closing (callers return
		// ErrClosed on their own) or the replica was removed from the
		// shard, and the command may or may not have committed.
		fail(batch, fmt.Errorf("%w: replica stopped", errAmbiguous))
	case res.Aborted():
		fail(batch, fmt.Errorf("%w: proposal aborted", ErrNotReady))
	default:
		fail(batch, fmt.Errorf("graft: shards: proposal rejected (%v)", res))
	}
}

// proposeError classifies a synchronous error from NodeHost.Propose.
func proposeError(err error) error {
	if errors.Is(err, dragonboat.ErrShardNotReady) || errors.Is(err, dragonboat.ErrSystemBusy) {
		return fmt.Errorf("%w: %v", errDropped, err)
	}
	return fmt.Errorf("graft: shards: propose: %w", translate(err))
}

func fail(batch []*request, err error) {
	for _, r := range batch {
		r.done <- result{err: err}
	}
}

// proposalTimeout is the latest deadline in the batch, or the default when a
// caller has none, but never below two ticks.
func (h *Host) proposalTimeout(batch []*request) time.Duration {
	var timeout time.Duration
	for _, r := range batch {
		dl, ok := r.ctx.Deadline()
		if !ok {
			timeout = max(timeout, defaultRequestTimeout)
			continue
		}
		timeout = max(timeout, time.Until(dl))
	}
	timeout = min(timeout, h.attemptTimeout())
	return max(timeout, 2*time.Duration(h.cfg.RTTMillisecond)*time.Millisecond)
}

// attemptTimeout bounds one proposal attempt: a proposal forwarded to a
// leader that died is lost without notice and would otherwise hang until
// its caller's deadline. Ten election timeouts, at least one second.
func (h *Host) attemptTimeout() time.Duration {
	return max(time.Second, 10*time.Duration(h.cfg.RTTMillisecond*h.cfg.ElectionRTT)*time.Millisecond)
}
