package member

import (
	"context"
	"fmt"
	"time"

	"github.com/eleven-am/graft/internal/cluster"
	"github.com/eleven-am/graft/internal/disk"
	"github.com/eleven-am/graft/internal/operator"
	"github.com/eleven-am/graft/internal/rpc"
	"github.com/eleven-am/graft/internal/wf"
	"github.com/eleven-am/graft/internal/wire"
	"github.com/eleven-am/graft/shards"
)

// The member RPC's methods. Each is one entry of rpcMethods: how its
// request is decoded, who may call it, what this member must have to serve
// it, and its handler. handleRPC checks the caller, serveRPC decodes the
// request and checks the need, then the handler runs; what it returns
// travels with its kind (wire.ToRemote).

// rpcMethods are the methods this member serves.
var rpcMethods = map[string]rpcMethod{
	wire.MethodApply:      {guarded: true, needs: needShard, rpcHandler: handle(wire.DecodeShardCall, serveApply)},
	wire.MethodRead:       {guarded: true, needs: needShard, rpcHandler: handle(wire.DecodeShardCall, serveRead)},
	wire.MethodExec:       {guarded: true, needs: needNothing, rpcHandler: handle(wire.DecodeExecRequest, serveExec)},
	wire.MethodEvent:      {guarded: true, needs: needNothing, rpcHandler: handle(wire.DecodeEvents, serveEvents)},
	wire.MethodReplica:    {guarded: true, needs: needLayout, rpcHandler: handle(wire.DecodeReplicaRequest, serveReplica)},
	wire.MethodDrop:       {guarded: true, needs: needLayout, rpcHandler: handle(wire.DecodeReplicaRequest, serveDrop)},
	wire.MethodMembership: {guarded: true, needs: needLayout, rpcHandler: handle(wire.DecodeMembershipRequest, serveMembership)},
	wire.MethodAdmit:      {guarded: false, needs: needGossip, rpcHandler: handle(wire.DecodeAdmitRequest, serveAdmit)},
	wire.MethodState:      {guarded: true, needs: needNothing, rpcHandler: handle(wire.DecodeStateRequest, serveState)},

	operator.MethodMembers:   operatorMethod(operator.MethodMembers),
	operator.MethodShards:    operatorMethod(operator.MethodShards),
	operator.MethodList:      operatorMethod(operator.MethodList),
	operator.MethodCount:     operatorMethod(operator.MethodCount),
	operator.MethodShow:      operatorMethod(operator.MethodShow),
	operator.MethodPause:     operatorMethod(operator.MethodPause),
	operator.MethodResume:    operatorMethod(operator.MethodResume),
	operator.MethodStop:      operatorMethod(operator.MethodStop),
	operator.MethodBroadcast: operatorMethod(operator.MethodBroadcast),
	operator.MethodQuery:     operatorMethod(operator.MethodQuery),
}

// rpcMethod is one method of the member RPC.
type rpcMethod struct {
	// guarded: the method changes or reveals state, so it is served only
	// to members of this cluster (network.CheckCaller), once this member started
	// its cluster. Admission is not: members not in the cluster yet ask it.
	guarded bool
	// operator: the method is an operator's (internal/operator), served
	// by any member, lone ones included, to the callers its operator
	// guard admits (see operatorGuard).
	operator bool
	// needs is what this member must have to serve the method, checked
	// once the request decoded; without it the call is refused with
	// CodeUnavailable (the caller may try another member).
	needs rpcNeed
	rpcHandler
}

// rpcNeed is what a member must have to serve a method.
type rpcNeed int

const (
	needNothing rpcNeed = iota
	needGossip          // its gossip runs (admission)
	needLayout          // it joined the cluster: it has a layout
	needShard           // it runs and holds a replica of the request's shard (a wire.ShardCall) that knows a leader
)

// rpcHandler decodes and serves a method's requests.
type rpcHandler struct {
	// decode decodes a request: it touches no state, refuses what is
	// malformed and allocates in proportion to the payload
	// (FuzzDecodeRPC).
	decode func(payload []byte) (any, error)
	// serve serves a decoded request.
	serve func(ctx context.Context, m *Member, at rpcServing, req any) ([]byte, error)
}

// handle returns the rpcHandler of typed decode and serve functions.
func handle[R any](decode func([]byte) (R, error), serve func(context.Context, *Member, rpcServing, R) ([]byte, error)) rpcHandler {
	return rpcHandler{
		decode: func(payload []byte) (any, error) {
			req, err := decode(payload)
			return req, err
		},
		serve: func(ctx context.Context, m *Member, at rpcServing, req any) ([]byte, error) {
			return serve(ctx, m, at, req.(R))
		},
	}
}

// rpcServing is what serveRPC found checking a method's need.
type rpcServing struct {
	c *cluster.Cluster // needGossip, needLayout: this member's cluster
	h *shards.Host     // needShard: this member's shards
}

// handleRPC serves the calls of other members and operators: only members
// of this cluster may call guarded methods (network.CheckCaller), only the
// callers the operator guard admits operator methods, and every request is
// decoded (decodeRPC) before anything else; a call about a shard this
// member does not host is refused before storage is touched.
func (m *Member) handleRPC(ctx context.Context, method string, payload []byte) ([]byte, error) {
	spec, ok := rpcMethods[method]
	switch {
	case ok && spec.operator:
		if err := m.checkOperator(ctx); err != nil {
			return nil, err
		}
	case !ok || spec.guarded:
		if err := m.refuseOperatorCert(ctx, method); err != nil {
			return nil, err
		}
		if err := m.net().CheckCaller(ctx); err != nil {
			return nil, err
		}
	}
	out, err := m.serveRPC(ctx, method, payload)
	return out, wire.ToRemote(err)
}

// serveRPC decodes and serves a call handleRPC let through.
func (m *Member) serveRPC(ctx context.Context, method string, payload []byte) ([]byte, error) {
	req, err := decodeRPC(method, payload)
	if err != nil {
		return nil, &rpc.CodedError{Code: rpc.CodeInvalid, Err: err}
	}
	spec := rpcMethods[method]
	at, err := m.rpcNeeds(spec.needs, req)
	if err != nil {
		return nil, err
	}
	return spec.serve(ctx, m, at, req)
}

// rpcNeeds checks that this member has what a method needs to serve req.
func (m *Member) rpcNeeds(needs rpcNeed, req any) (rpcServing, error) {
	unavailable := func(format string, args ...any) (rpcServing, error) {
		return rpcServing{}, &rpc.CodedError{Code: rpc.CodeUnavailable, Err: fmt.Errorf(format, args...)}
	}
	switch needs {
	case needGossip:
		c, ready := m.net().(*cluster.Cluster)
		if !ready {
			return unavailable("member %s cannot answer admission yet", m.cfg.NodeID)
		}
		return rpcServing{c: c}, nil
	case needLayout:
		c, ok := m.net().(*cluster.Cluster)
		if !ok || !c.Joined() {
			return unavailable("member %s has not joined the cluster yet", m.cfg.NodeID)
		}
		return rpcServing{c: c}, nil
	case needShard:
		sc, ok := req.(wire.ShardCall)
		if !ok {
			return rpcServing{}, fmt.Errorf("a %T names no shard", req) // a method table defect
		}
		// Refused before any storage call unless this member holds a
		// replica of the shard.
		h, err := m.running()
		if err != nil || !m.hosts(sc.Shard) {
			return unavailable("member %s does not serve shard %d", m.cfg.NodeID, sc.Shard)
		}
		if _, ok := h.LeaderID(sc.Shard); !ok {
			// A replica without a leader (an election, a partition, or a
			// replica removed while its member was away) would hold the
			// call until its deadline; another member may do better.
			return unavailable("member %s knows no leader of shard %d", m.cfg.NodeID, sc.Shard)
		}
		return rpcServing{h: h}, nil
	}
	return rpcServing{}, nil
}

// serveApply proposes a command forwarded by another member.
func serveApply(ctx context.Context, m *Member, at rpcServing, req wire.ShardCall) ([]byte, error) {
	// The caller charged the command against its own disk; this member's
	// is protected by its hard floor (see disk.Guard). (Purges are never
	// forwarded: the shard's leader proposes them.)
	r := m.router()
	release, err := r.Disk.Reserve(time.Now(), disk.CommandBytes(wf.OpStart, req.Body), disk.Step)
	if err != nil {
		return nil, &rpc.CodedError{Code: rpc.CodeStorageFull, Err: err}
	}
	defer release()
	r.Host = at.h
	out, err := r.ApplyHere(ctx, req.Shard, req.Body)
	return out, wire.ShardError(err)
}

// serveRead answers a query forwarded by another member.
func serveRead(ctx context.Context, _ *Member, at rpcServing, req wire.ShardCall) ([]byte, error) {
	out, err := at.h.Read(ctx, req.Shard, req.Body)
	return out, wire.ShardError(err)
}

// serveExec runs a step for another member.
func serveExec(ctx context.Context, m *Member, _ rpcServing, req wire.ExecRequest) ([]byte, error) {
	return m.serveExec(ctx, req)
}

// serveEvents publishes lifecycle events forwarded by the shard's leader.
func serveEvents(_ context.Context, m *Member, _ rpcServing, evs []wire.Event) ([]byte, error) {
	for i := range evs {
		ch := evs[i].Change()
		if ev := workflowEvent(&ch, evs[i].From); ev != nil {
			m.bus.Publish(ev)
		}
	}
	return nil, nil
}

// serveReplica starts (or confirms) a replica a shard's leader added here.
func serveReplica(ctx context.Context, _ *Member, at rpcServing, req wire.ReplicaRequest) ([]byte, error) {
	return nil, at.c.ServeReplica(ctx, req)
}

// serveDrop deletes a replica removed from its shard.
func serveDrop(ctx context.Context, _ *Member, at rpcServing, req wire.ReplicaRequest) ([]byte, error) {
	return nil, at.c.ServeDrop(ctx, req)
}

// serveMembership answers with a shard's membership.
func serveMembership(ctx context.Context, _ *Member, at rpcServing, req wire.ReplicaRequest) ([]byte, error) {
	return at.c.ServeMembership(ctx, req)
}

// serveAdmit answers whether this member admitted the asking one.
func serveAdmit(_ context.Context, _ *Member, at rpcServing, req wire.AdmitRequest) ([]byte, error) {
	return nil, at.c.ServeAdmit(req)
}

// decodeRPC decodes the request of method with its rpcMethods decoder.
// An unknown method or a malformed request is an error.
func decodeRPC(method string, payload []byte) (any, error) {
	spec, ok := rpcMethods[method]
	if !ok {
		return nil, fmt.Errorf("unknown method %q", method)
	}
	req, err := spec.decode(payload)
	if err != nil {
		return nil, fmt.Errorf("decoding %s request: %w", method, err)
	}
	return req, nil
}
