// Package wire is what travels between members over the member RPC
// (internal/rpc): the method names, the request and reply types, the pure
// decoders every request passes before a handler sees it (they touch no
// state, refuse what is malformed, and allocate in proportion to the
// payload), and the error kinds that keep an error's identity across the
// call (ToRemote on the serving member, FromRemote and RemoteStepError on
// the caller). It imports internal/errs, internal/rpc, internal/wf,
// internal/statesync, executor and shards.
package wire

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/eleven-am/graft/executor"
	"github.com/eleven-am/graft/internal/statesync"
	"github.com/eleven-am/graft/internal/wf"
)

// Member RPC methods of workflows.
const (
	MethodApply = "apply" // propose a command to a shard this member hosts
	MethodRead  = "read"  // linearizable read of a shard this member hosts
	MethodEvent = "event" // a workflow lifecycle change, for the member that started it
	MethodExec  = "exec"  // run a step of a node type this member registered
	MethodAdmit = "admit" // does this member's gossip admit the asking member?
)

// MethodState is the member RPC method of the cluster state's push-pull
// anti-entropy (internal/statesync): the request is a statesync.Request
// (the caller's digest and its own entry), the reply the encoded
// crdt.State the caller lacks.
const MethodState = "state"

// Member RPC methods of rebalancing.
const (
	MethodReplica    = "replica"    // start (or confirm) a replica a shard's leader added here
	MethodDrop       = "drop"       // a replica here was removed from its shard: delete it
	MethodMembership = "membership" // a shard's current membership
)

// Decoding member RPC requests. Every request another member (or anything
// that reaches the RPC port) sends is decoded here, by pure functions that
// touch no state, before the member acts on it: they refuse what is
// malformed, and they keep the memory a decode allocates proportional to
// the request (internal/member's FuzzDecodeRPC checks both). The member's
// method table names each method's decoder.

// DecodeShardCall decodes an apply or read request.
func DecodeShardCall(payload []byte) (ShardCall, error) {
	s, body, err := DecodeShardPayload(payload)
	return ShardCall{Shard: s, Body: body}, err
}

// DecodeShardPayload splits an apply or read payload into its shard (8
// bytes, big endian; shards are numbered from 1) and body.
func DecodeShardPayload(payload []byte) (uint64, []byte, error) {
	if len(payload) < 8 {
		return 0, nil, fmt.Errorf("short payload: %d bytes, want at least 8", len(payload))
	}
	s := binary.BigEndian.Uint64(payload)
	if s == 0 {
		return 0, nil, errors.New("shard 0 does not exist")
	}
	return s, payload[8:], nil
}

// DecodeExecRequest decodes a step to run for another member.
func DecodeExecRequest(payload []byte) (ExecRequest, error) {
	var req ExecRequest
	if err := StrictJSON(payload, &req); err != nil {
		return ExecRequest{}, err
	}
	if req.Node == "" {
		return ExecRequest{}, errors.New("no node named")
	}
	return req, nil
}

// DecodeReplicaRequest decodes a replica or drop request: a replica of a
// shard.
func DecodeReplicaRequest(payload []byte) (ReplicaRequest, error) {
	req, err := DecodeMembershipRequest(payload)
	if err == nil && req.Replica == 0 {
		return ReplicaRequest{}, errors.New("replica 0 does not exist")
	}
	return req, err
}

// DecodeMembershipRequest decodes a membership request: it names a shard.
func DecodeMembershipRequest(payload []byte) (ReplicaRequest, error) {
	var req ReplicaRequest
	if err := StrictJSON(payload, &req); err != nil {
		return ReplicaRequest{}, err
	}
	if req.Shard == 0 {
		return ReplicaRequest{}, errors.New("shard 0 does not exist")
	}
	return req, nil
}

// DecodeStateRequest decodes an anti-entropy request with the bounded
// crdt decoders (statesync.DecodeRequest).
func DecodeStateRequest(payload []byte) (statesync.Request, error) {
	return statesync.DecodeRequest(payload)
}

// DecodeAdmitRequest decodes an admission question.
func DecodeAdmitRequest(payload []byte) (AdmitRequest, error) {
	var req AdmitRequest
	if err := StrictJSON(payload, &req); err != nil {
		return AdmitRequest{}, err
	}
	if req.ID == "" {
		return AdmitRequest{}, errors.New("no node ID")
	}
	return req, nil
}

// DecodeEvents decodes a batch of forwarded lifecycle events: a JSON array
// of at most MaxEventBatch events, decoded one at a time so a longer one is
// refused before it is allocated.
func DecodeEvents(payload []byte) ([]Event, error) {
	d := json.NewDecoder(bytes.NewReader(payload))
	if t, err := d.Token(); err != nil || t != json.Delim('[') {
		return nil, errors.New("not a JSON array")
	}
	var out []Event
	for d.More() {
		if len(out) == MaxEventBatch {
			return nil, fmt.Errorf("more than %d events", MaxEventBatch)
		}
		var ev Event
		if err := d.Decode(&ev); err != nil {
			return nil, err
		}
		if ev.View.ID == "" {
			return nil, errors.New("an event names no workflow")
		}
		out = append(out, ev)
	}
	if t, err := d.Token(); err != nil || t != json.Delim(']') {
		return nil, errors.New("unterminated JSON array")
	}
	if len(bytes.TrimSpace(payload[d.InputOffset():])) > 0 {
		return nil, errors.New("data after the array")
	}
	return out, nil
}

// StrictJSON decodes one JSON value into v, refusing trailing data.
func StrictJSON(payload []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(payload))
	if err := d.Decode(v); err != nil {
		return err
	}
	if len(bytes.TrimSpace(payload[d.InputOffset():])) > 0 {
		return errors.New("data after the JSON value")
	}
	return nil
}

// Event is a forwarded lifecycle event as it travels: the fields of the
// workflow's view that lifecycle events report (see workflowEvent). Its
// pending and running tasks are left out, so a peer cannot make the
// receiver allocate them.
type Event struct {
	From string        `json:"from"`
	Kind wf.ChangeKind `json:"kind"`
	View eventView     `json:"view"`
}

// eventView is the part of a wf.View a forwarded event carries.
type eventView struct {
	ID           string            `json:"id"`
	Status       wf.Status         `json:"s,omitempty"`
	Metadata     map[string]string `json:"md,omitempty"`
	CreatedAt    int64             `json:"c,omitempty"`
	UpdatedAt    int64             `json:"u,omitempty"`
	EndedAt      int64             `json:"e,omitempty"`
	LastError    string            `json:"le,omitempty"`
	FailedNode   string            `json:"fn,omitempty"`
	FailedTry    int               `json:"ft,omitempty"`
	Starter      string            `json:"st,omitempty"`
	InitialNodes []string          `json:"in,omitempty"`
	State        json.RawMessage   `json:"state,omitempty"`
	Executed     []string          `json:"executed,omitempty"`
}

// Wire returns fe as it travels.
func (fe *ForwardedEvent) Wire() Event {
	v := &fe.View
	return Event{From: fe.From, Kind: fe.Kind, View: eventView{
		ID: v.ID, Status: v.Status, Metadata: v.Metadata, CreatedAt: v.CreatedAt, UpdatedAt: v.UpdatedAt,
		EndedAt: v.EndedAt, LastError: v.LastError, FailedNode: v.FailedNode, FailedTry: v.FailedTry,
		Starter: v.Starter, InitialNodes: v.InitialNodes, State: v.State, Executed: v.Executed,
	}}
}

// Change returns the lifecycle change w carries.
func (w *Event) Change() wf.Change {
	v := &w.View
	return wf.Change{Kind: w.Kind, View: wf.View{
		Record: wf.Record{ID: v.ID, Status: v.Status, Metadata: v.Metadata, CreatedAt: v.CreatedAt, UpdatedAt: v.UpdatedAt,
			EndedAt: v.EndedAt, LastError: v.LastError, FailedNode: v.FailedNode, FailedTry: v.FailedTry,
			Starter: v.Starter, InitialNodes: v.InitialNodes},
		State: v.State, Executed: v.Executed,
	}}
}

// ExecRequest asks a member to run one step of a node it registered.
type ExecRequest struct {
	Node    string                   `json:"node"`
	Context executor.WorkflowContext `json:"ctx"`
	State   json.RawMessage          `json:"state,omitempty"`
	Config  json.RawMessage          `json:"config,omitempty"`
}

// ExecReply is the outcome of a step that succeeded on another member; a
// step's error is the call's error (see StepFailure).
type ExecReply struct {
	Output *executor.Output `json:"output,omitempty"`
}

// ForwardedEvent carries a lifecycle change from a shard's leader to the
// member that started the workflow.
type ForwardedEvent struct {
	From string        `json:"from"`
	Kind wf.ChangeKind `json:"kind"`
	View wf.View       `json:"view"`
}

// ShardPayload prefixes an RPC body with the shard it is about.
func ShardPayload(s uint64, body []byte) []byte {
	return append(binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(body)), s), body...)
}

// MaxEventBatch is the most lifecycle events forwarded in one call.
const MaxEventBatch = 512

// EncodeEventBatches encodes evs as JSON arrays of at most limit bytes each
// (and at most MaxEventBatch events), in order. An event that alone is over
// limit, or that cannot be encoded, is left out and counted in dropped.
func EncodeEventBatches(evs []ForwardedEvent, limit int) (batches [][]byte, dropped int) {
	var cur []byte
	n := 0
	flush := func() {
		if n > 0 {
			batches = append(batches, append(cur, ']'))
		}
		cur, n = nil, 0
	}
	for i := range evs {
		b, err := json.Marshal(evs[i].Wire())
		if err != nil || len(b)+2 > limit {
			dropped++
			continue
		}
		if n == MaxEventBatch || len(cur)+1+len(b)+1 > limit {
			flush()
		}
		if n == 0 {
			cur = append(make([]byte, 0, len(b)+2), '[')
		} else {
			cur = append(cur, ',')
		}
		cur = append(cur, b...)
		n++
	}
	flush()
	return batches, dropped
}

// ReplicaRequest names one replica of a shard.
type ReplicaRequest struct {
	Shard   uint64 `json:"shard"`
	Replica uint64 `json:"replica"`
	// New is set when the asking leader has just added the replica: only
	// then may the member start it. A member asked to confirm a replica it
	// does not hold, without New, has lost it (its data directory was
	// replaced, say) and answers so; the leader then replaces it.
	New bool `json:"new,omitempty"`
	// Applied asks a membership request for the membership the answering
	// member's replica has applied, without a quorum read: a replica just
	// added counts towards the quorum before it runs, so a linearizable
	// read could wait on the very replica asking.
	Applied bool `json:"applied,omitempty"`
}

// MembershipReply is a shard's membership as one of its replicas sees it:
// each replica ID with its Raft target (NodeHost ID, or Raft address in
// older shards), and the removed replica IDs.
type MembershipReply struct {
	Replicas map[uint64]string `json:"replicas"`
	Removed  []uint64          `json:"removed"`
}

// AdmitRequest asks a member whether it admitted the member with ID.
type AdmitRequest struct {
	ID string `json:"id"`
}

// ShardCall is an apply or read request: a command or query for a shard.
type ShardCall struct {
	Shard uint64
	Body  []byte // decoded by the shard
}
