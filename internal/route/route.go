// Package route is where a member's calls about a shard go: shard lookup
// (does this member hold a replica?), local-or-forward (propose or read
// here, or forward to the members holding the shard, with the fallbacks of
// a replica without a leader or dropped mid-call), start-at-leader and
// claim-in-start in one place (Start on the starting member, ApplyHere on
// the shard's leader), and the free-space check before each write. A
// Router is a snapshot of the member's parts, taken per call. It imports
// shards, internal/disk, internal/errs, internal/wf and internal/wire.
package route

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/eleven-am/graft/internal/disk"
	"github.com/eleven-am/graft/internal/errs"
	"github.com/eleven-am/graft/internal/wf"
	"github.com/eleven-am/graft/internal/wire"
	"github.com/eleven-am/graft/shards"
)

// Network is how routing reaches the other members; a lone member's holds
// every shard and knows no other member.
type Network interface {
	// ReplicaOf returns this member's replica ID in shard s and whether it
	// hosts s.
	ReplicaOf(s uint64) (uint64, bool)
	// Forward sends a call about shard s to the members holding it.
	Forward(ctx context.Context, s uint64, method string, body []byte) ([]byte, error)
	// LeaderOf returns the RPC address of the other member leading shard
	// s, or "" if none is known.
	LeaderOf(s uint64) string
	// Call calls method on the member at RPC address addr.
	Call(ctx context.Context, addr, method string, body []byte) ([]byte, error)
}

// Claims is the engine as routing uses it: the claims a start makes for
// this member, and adopting them once committed (*engine.Engine).
type Claims interface {
	// ClaimFields fills in c's claim of the tasks it creates, for this
	// member.
	ClaimFields(shard uint64, c *wf.Command)
	// Adopt queues the tasks committed command c claimed for this member.
	Adopt(shard uint64, c *wf.Command, res *wf.Result)
}

// Router routes one call. Host is the member's shards (nil once closed),
// Net its network, Claims its engine (nil if it has none), Disk its disk
// guard (nil accepts everything), Clustered whether it runs in a cluster.
// Stamp, if set, returns this member's wf.Command.Proposer for shard s:
// every command proposed through this member's replica carries it (a
// forwarded command is re-stamped by the member that proposes it,
// ApplyHere), so that the replica that proposed a command counts its
// changes.
type Router struct {
	Host      *shards.Host
	Net       Network
	Claims    Claims
	Disk      *disk.Guard
	Clustered bool
	Stamp     func(s uint64) string
}

// stamp returns the Proposer of a command proposed here about shard s.
func (r Router) stamp(s uint64) string {
	if r.Stamp == nil {
		return ""
	}
	return r.Stamp(s)
}

// Start proposes a start command and returns its result. The shard's
// leader runs the first steps: started there, it claims them in the start
// command itself, here or at the leader this member knows of.
func (r Router) Start(ctx context.Context, shard uint64, cmd *wf.Command) (wf.Result, error) {
	res, err := r.startAtLeader(ctx, shard, cmd)
	if err != nil {
		if r.Claims != nil {
			r.Claims.ClaimFields(shard, cmd)
		}
		res, err = r.Apply(ctx, shard, cmd, disk.Intake)
	}
	if err == nil && res.Code == wf.OK && r.Claims != nil {
		r.Claims.Adopt(shard, cmd, &res)
	}
	return res, err
}

// Apply proposes c to shard (here or through a member that hosts it),
// charging its estimated disk bytes against class's floor first (see
// disk.Guard.Reserve), and decodes the result.
func (r Router) Apply(ctx context.Context, shard uint64, c *wf.Command, class disk.Class) (wf.Result, error) {
	h := r.Host
	if h == nil {
		return wf.Result{}, errs.ErrClosed
	}
	c.Proposer = r.stamp(shard)
	raw, err := wf.EncodeCommand(c)
	if err != nil {
		return wf.Result{}, fmt.Errorf("encoding %s command: %w", c.Op, err)
	}
	release, err := r.Disk.Reserve(time.Now(), disk.CommandBytes(c.Op, raw), class)
	if err != nil {
		return wf.Result{}, err
	}
	defer release()
	out, err := r.route(ctx, shard, wire.MethodApply, raw, func() ([]byte, error) { return h.Propose(ctx, shard, raw) })
	if err != nil {
		return wf.Result{}, err
	}
	return wf.DecodeResult(out)
}

// Read answers query q about shard (here or at a member that hosts it),
// linearizably, decoding the answer into v. The router's Host must be
// running.
func (r Router) Read(ctx context.Context, shard uint64, q wf.Query, v any) error {
	h := r.Host
	query := wf.EncodeQuery(q)
	out, err := r.route(ctx, shard, wire.MethodRead, query, func() ([]byte, error) { return h.Read(ctx, shard, query) })
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
func (r Router) route(ctx context.Context, shard uint64, method string, body []byte, local func() ([]byte, error)) ([]byte, error) {
	if _, hosted := r.Net.ReplicaOf(shard); !hosted {
		return r.Net.Forward(ctx, shard, method, body)
	}
	if _, ok := r.Host.LeaderID(shard); !ok && r.Clustered {
		if out, err := r.Net.Forward(ctx, shard, method, body); err == nil || !errs.IsRetryable(err) {
			return out, err
		}
	}
	out, err := local()
	if errors.Is(err, shards.ErrShardNotFound) && r.Clustered {
		return r.Net.Forward(ctx, shard, method, body)
	}
	return out, errs.Translate(err)
}

// startAtLeader sends a start command to the member leading its shard,
// when that is another member and this one knows it (it holds a replica):
// the leader claims the first steps in the same command (see ApplyHere).
// Any error means the caller proposes the command itself; the command's
// nonce makes a start that committed anyway harmless.
func (r Router) startAtLeader(ctx context.Context, shard uint64, cmd *wf.Command) (wf.Result, error) {
	addr := r.Net.LeaderOf(shard)
	if addr == "" || (r.Host != nil && r.Host.IsLeader(shard)) {
		return wf.Result{}, errNoLeaderKnown
	}
	raw, err := wf.EncodeCommand(cmd)
	if err != nil {
		return wf.Result{}, err
	}
	release, err := r.Disk.Reserve(time.Now(), disk.CommandBytes(cmd.Op, raw), disk.Intake)
	if err != nil {
		return wf.Result{}, err
	}
	defer release()
	out, err := r.Net.Call(ctx, addr, wire.MethodApply, wire.ShardPayload(shard, raw))
	if err != nil {
		return wf.Result{}, wire.FromRemote(err)
	}
	return wf.DecodeResult(out)
}

// errNoLeaderKnown: no other member is known to lead the shard.
var errNoLeaderKnown = errors.New("no other member known to lead the shard")

// ApplyHere proposes a command forwarded by another member through this
// member's replica of shard s. A workflow start reaching the shard's leader
// claims its first steps for this member in the same command, as a start
// made here would, saving a round of Raft before they run; those claims are
// this member's to run, so the answer leaves them out.
func (r Router) ApplyHere(ctx context.Context, s uint64, raw []byte) ([]byte, error) {
	h, e := r.Host, r.Claims
	cmd, err := wf.DecodeCommand(raw)
	if err != nil {
		return h.Propose(ctx, s, raw) // the state machine answers Invalid
	}
	cmd.Proposer = r.stamp(s)
	if e == nil || !h.IsLeader(s) || cmd.Op != wf.OpStart {
		if raw, err = wf.EncodeCommand(&cmd); err != nil {
			return nil, err
		}
		return h.Propose(ctx, s, raw)
	}
	// Whatever the sender claimed is replaced by this member's claims.
	cmd.Member, cmd.Incarnation, cmd.LeaseUntil = "", "", 0
	for i := range cmd.Tasks {
		cmd.Tasks[i].Claim = false
	}
	e.ClaimFields(s, &cmd)
	if raw, err = wf.EncodeCommand(&cmd); err != nil {
		return nil, err
	}
	out, err := h.Propose(ctx, s, raw)
	if err != nil {
		return nil, err
	}
	res, err := wf.DecodeResult(out)
	if err != nil || len(res.Claimed) == 0 {
		return out, err
	}
	e.Adopt(s, &cmd, &res)
	res.Claimed = nil
	return wf.EncodeResult(res)
}
