package graft

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/eleven-am/graft/internal/wf"
)

// Decoding member RPC requests. Every request another member (or anything
// that reaches the RPC port) sends is decoded here, by pure functions that
// touch no state, before handleRPC acts on it: they refuse what is
// malformed, and they keep the memory a decode allocates proportional to
// the request (FuzzDecodeRPC checks both).

// rpcRequest is a decoded member RPC request; the fields of its method are
// set.
type rpcRequest struct {
	shard   uint64         // apply, read: the shard the call is about
	body    []byte         // apply, read: the command or query, decoded by the shard
	exec    execRequest    // exec
	events  []eventWire    // event: lifecycle changes
	replica replicaRequest // replica, drop, membership
	admit   admitRequest   // admit
}

// decodeRPC decodes the request of method. An unknown method or a
// malformed request is an error.
func decodeRPC(method string, payload []byte) (rpcRequest, error) {
	var req rpcRequest
	var err error
	switch method {
	case rpcApply, rpcRead:
		req.shard, req.body, err = decodeShardPayload(payload)
	case rpcExec:
		req.exec, err = decodeExecRequest(payload)
	case rpcEvent:
		req.events, err = decodeEvents(payload)
	case rpcReplica, rpcDrop, rpcMembership:
		req.replica, err = decodeReplicaRequest(method, payload)
	case rpcAdmit:
		req.admit, err = decodeAdmitRequest(payload)
	default:
		return req, fmt.Errorf("unknown method %q", method)
	}
	if err != nil {
		return req, fmt.Errorf("decoding %s request: %w", method, err)
	}
	return req, nil
}

// decodeShardPayload splits an apply or read payload into its shard (8
// bytes, big endian; shards are numbered from 1) and body.
func decodeShardPayload(payload []byte) (uint64, []byte, error) {
	if len(payload) < 8 {
		return 0, nil, fmt.Errorf("short payload: %d bytes, want at least 8", len(payload))
	}
	s := binary.BigEndian.Uint64(payload)
	if s == 0 {
		return 0, nil, errors.New("shard 0 does not exist")
	}
	return s, payload[8:], nil
}

// decodeExecRequest decodes a step to run for another member.
func decodeExecRequest(payload []byte) (execRequest, error) {
	var req execRequest
	if err := strictJSON(payload, &req); err != nil {
		return execRequest{}, err
	}
	if req.Node == "" {
		return execRequest{}, errors.New("no node named")
	}
	return req, nil
}

// decodeReplicaRequest decodes a replica, drop or membership request: each
// names a shard, and replica and drop a replica of it.
func decodeReplicaRequest(method string, payload []byte) (replicaRequest, error) {
	var req replicaRequest
	if err := strictJSON(payload, &req); err != nil {
		return replicaRequest{}, err
	}
	if req.Shard == 0 {
		return replicaRequest{}, errors.New("shard 0 does not exist")
	}
	if method != rpcMembership && req.Replica == 0 {
		return replicaRequest{}, errors.New("replica 0 does not exist")
	}
	return req, nil
}

// decodeAdmitRequest decodes an admission question.
func decodeAdmitRequest(payload []byte) (admitRequest, error) {
	var req admitRequest
	if err := strictJSON(payload, &req); err != nil {
		return admitRequest{}, err
	}
	if req.ID == "" {
		return admitRequest{}, errors.New("no node ID")
	}
	return req, nil
}

// decodeEvents decodes a batch of forwarded lifecycle events: a JSON array
// of at most maxEventBatch events, decoded one at a time so a longer one is
// refused before it is allocated.
func decodeEvents(payload []byte) ([]eventWire, error) {
	d := json.NewDecoder(bytes.NewReader(payload))
	if t, err := d.Token(); err != nil || t != json.Delim('[') {
		return nil, errors.New("not a JSON array")
	}
	var out []eventWire
	for d.More() {
		if len(out) == maxEventBatch {
			return nil, fmt.Errorf("more than %d events", maxEventBatch)
		}
		var ev eventWire
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

// strictJSON decodes one JSON value into v, refusing trailing data.
func strictJSON(payload []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(payload))
	if err := d.Decode(v); err != nil {
		return err
	}
	if len(bytes.TrimSpace(payload[d.InputOffset():])) > 0 {
		return errors.New("data after the JSON value")
	}
	return nil
}

// eventWire is a forwarded lifecycle event as it travels: the fields of the
// workflow's view that lifecycle events report (see workflowEvent). Its
// pending and running tasks are left out, so a peer cannot make the
// receiver allocate them.
type eventWire struct {
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

// wire returns fe as it travels.
func (fe *forwardedEvent) wire() eventWire {
	v := &fe.View
	return eventWire{From: fe.From, Kind: fe.Kind, View: eventView{
		ID: v.ID, Status: v.Status, Metadata: v.Metadata, CreatedAt: v.CreatedAt, UpdatedAt: v.UpdatedAt,
		EndedAt: v.EndedAt, LastError: v.LastError, FailedNode: v.FailedNode, FailedTry: v.FailedTry,
		Starter: v.Starter, InitialNodes: v.InitialNodes, State: v.State, Executed: v.Executed,
	}}
}

// change returns the lifecycle change w carries.
func (w *eventWire) change() wf.Change {
	v := &w.View
	return wf.Change{Kind: w.Kind, View: wf.View{
		Record: wf.Record{ID: v.ID, Status: v.Status, Metadata: v.Metadata, CreatedAt: v.CreatedAt, UpdatedAt: v.UpdatedAt,
			EndedAt: v.EndedAt, LastError: v.LastError, FailedNode: v.FailedNode, FailedTry: v.FailedTry,
			Starter: v.Starter, InitialNodes: v.InitialNodes},
		State: v.State, Executed: v.Executed,
	}}
}
