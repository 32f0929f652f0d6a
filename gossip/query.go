package gossip

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"github.com/hashicorp/serf/serf"
)

// QueryResponse is one member's reply to a Query.
type QueryResponse struct {
	// From is the replying member's NodeID.
	From string
	// Payload is the handler's reply (nil when Err is set).
	Payload []byte
	// Err is the handler's error as a *RemoteError, or nil.
	Err error
}

const (
	queryReplyOK  = 0
	queryReplyErr = 1
)

// Query sends a query to every alive member, this one included, and collects
// each member's reply (payload or error) until every member alive when the
// query was sent has replied or ctx ends, whichever is first. The result maps
// NodeID to reply; members that did not reply in time are absent. Without a
// ctx deadline Serf's default query timeout applies (GossipInterval × 16 ×
// ceil(log10(members+1))). name plus payload must not exceed MaxQuerySize.
// A cancelled (not expired) ctx returns the replies so far with ctx.Err().
func (n *Node) Query(ctx context.Context, name string, payload []byte) (map[string]QueryResponse, error) {
	if name == "" {
		return nil, errors.New("graft: gossip query name is empty")
	}
	if strings.HasPrefix(name, serf.InternalQueryPrefix) {
		return nil, fmt.Errorf("graft: gossip query name %q uses Serf's reserved prefix %q", name, serf.InternalQueryPrefix)
	}
	if size := len(name) + len(payload); size > MaxQuerySize {
		return nil, &PayloadTooLargeError{Kind: "query", Size: size, Limit: MaxQuerySize}
	}
	s, err := n.serf()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	params := s.DefaultQueryParams()
	if dl, ok := ctx.Deadline(); ok {
		params.Timeout = max(time.Until(dl), time.Millisecond)
	}
	expected := len(n.Members())
	resp, err := s.Query(name, payload, params)
	if err != nil {
		return nil, fmt.Errorf("sending query %q: %w", name, err)
	}
	defer resp.Close()
	out := map[string]QueryResponse{}
	for len(out) < expected {
		select {
		case r, ok := <-resp.ResponseCh():
			if !ok {
				return out, nil
			}
			out[r.From] = decodeQueryReply(r.From, r.Payload)
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return out, nil
			}
			return out, ctx.Err()
		}
	}
	return out, nil
}

func decodeQueryReply(from string, b []byte) QueryResponse {
	if len(b) == 0 {
		return QueryResponse{From: from, Err: &RemoteError{Node: from, Msg: "empty reply"}}
	}
	switch b[0] {
	case queryReplyOK:
		return QueryResponse{From: from, Payload: b[1:]}
	case queryReplyErr:
		return QueryResponse{From: from, Err: &RemoteError{Node: from, Msg: string(b[1:])}}
	default:
		return QueryResponse{From: from, Err: &RemoteError{Node: from, Msg: "malformed reply"}}
	}
}

// OnQuery sets the handler that answers queries (replacing any previous
// one). from is the querying member's NodeID. The returned payload (at most
// MaxQueryResponseSize bytes) or error is sent back to the querier; a member
// without a handler replies ErrNoQueryHandler. Handlers run one at a time on
// a dedicated goroutine, never on Serf's; queries whose deadline passed
// while queued are skipped. Under Strict, queries from members not in
// AllowedNodes are not answered.
func (n *Node) OnQuery(fn func(name string, payload []byte, from string) ([]byte, error)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.queryHandler = fn
}

func (n *Node) queryDispatcher() {
	for {
		select {
		case <-n.stopEvents:
			return
		case q := <-n.queryQ:
			if time.Now().After(q.Deadline()) {
				continue
			}
			n.mu.Lock()
			h := n.queryHandler
			n.mu.Unlock()
			reply := n.runQueryHandler(h, q)
			if err := q.Respond(reply); err != nil {
				n.logger.Debug("gossip: query reply not sent", "name", q.Name, "from", q.SourceNode(), "error", err)
			}
		}
	}
}

func (n *Node) runQueryHandler(h func(string, []byte, string) ([]byte, error), q *serf.Query) (reply []byte) {
	errReply := func(msg string) []byte { return append([]byte{queryReplyErr}, msg...) }
	if h == nil {
		return errReply(ErrNoQueryHandler.Error())
	}
	defer func() {
		if r := recover(); r != nil {
			n.logger.Error("gossip: query handler panicked", "name", q.Name, "panic", r, "stack", string(debug.Stack()))
			reply = errReply(fmt.Sprintf("handler panicked: %v", r))
		}
	}()
	out, err := h(q.Name, q.Payload, q.SourceNode())
	switch {
	case err != nil:
		msg := err.Error()
		if len(msg) > MaxQueryResponseSize {
			msg = msg[:MaxQueryResponseSize]
		}
		return errReply(msg)
	case len(out) > MaxQueryResponseSize:
		return errReply(fmt.Sprintf("reply of %d bytes exceeds the limit of %d bytes", len(out), MaxQueryResponseSize))
	}
	return append([]byte{queryReplyOK}, out...)
}
