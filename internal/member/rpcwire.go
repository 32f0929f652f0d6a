package member

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
// the request (FuzzDecodeRPC checks both). rpcMethods names each method's
// decoder.

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

// decodeShardCall decodes an apply or read request.
func decodeShardCall(payload []byte) (shardCall, error) {
	s, body, err := decodeShardPayload(payload)
	return shardCall{shard: s, body: body}, err
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

// decodeReplicaRequest decodes a replica or drop request: a replica of a
// shard.
func decodeReplicaRequest(payload []byte) (replicaRequest, error) {
	req, err := decodeMembershipRequest(payload)
	if err == nil && req.Replica == 0 {
		return replicaRequest{}, errors.New("replica 0 does not exist")
	}
	return req, err
}

// decodeMembershipRequest decodes a membership request: it names a shard.
func decodeMembershipRequest(payload []byte) (replicaRequest, error) {
	var req replicaRequest
	if err := strictJSON(payload, &req); err != nil {
		return replicaRequest{}, err
	}
	if req.Shard == 0 {
		return replicaRequest{}, errors.New("shard 0 does not exist")
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
