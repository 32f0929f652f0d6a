package gossip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime/debug"
)

// userEnvelopeVersion prefixes every user event payload Graft sends. Serf
// user events do not carry their origin, so the envelope records the
// sender's NodeID: version byte, uvarint length of the ID, the ID, payload.
const userEnvelopeVersion = 1

type userEvent struct {
	name    string
	payload []byte
	from    string
}

func encodeUserEnvelope(from string, payload []byte) []byte {
	buf := make([]byte, 0, 1+binary.MaxVarintLen16+len(from)+len(payload))
	buf = append(buf, userEnvelopeVersion)
	buf = binary.AppendUvarint(buf, uint64(len(from)))
	buf = append(buf, from...)
	return append(buf, payload...)
}

func decodeUserEnvelope(b []byte) (from string, payload []byte, err error) {
	if len(b) == 0 || b[0] != userEnvelopeVersion {
		return "", nil, errors.New("unknown envelope version")
	}
	l, k := binary.Uvarint(b[1:])
	if k <= 0 || l > uint64(len(b)-1-k) {
		return "", nil, errors.New("bad sender length")
	}
	start := 1 + k
	return string(b[start : start+int(l)]), b[start+int(l):], nil
}

// Broadcast sends a user event to every member, this one included (it is
// delivered locally at once, and to the others by gossip, best effort and
// usually within a few gossip intervals). name plus payload must not exceed
// MaxUserEventSize bytes; larger events are refused with a
// *PayloadTooLargeError before anything is sent. Events are not coalesced.
func (n *Node) Broadcast(name string, payload []byte) error {
	if name == "" {
		return errors.New("graft: gossip user event name is empty")
	}
	if size := len(name) + len(payload); size > MaxUserEventSize {
		return &PayloadTooLargeError{Kind: "user event", Size: size, Limit: MaxUserEventSize}
	}
	s, err := n.serf()
	if err != nil {
		return err
	}
	if err := s.UserEvent(name, encodeUserEnvelope(n.cfg.NodeID, payload), false); err != nil {
		return fmt.Errorf("broadcasting user event %q: %w", name, err)
	}
	return nil
}

// OnUserEvent registers fn to run for every user event, those this member
// broadcasts included. from is the sender's NodeID, taken from the envelope
// Broadcast adds (members that are not Graft Nodes cannot send valid events).
// Handlers run one at a time, in registration order, on a dedicated
// goroutine, never on Serf's; a handler that blocks delays later events, and
// once DefaultEventBuffer events are queued new ones are dropped and counted
// (DroppedEvents). payload must not be retained after fn returns unless
// copied. Under Strict, events from members not in AllowedNodes are ignored.
func (n *Node) OnUserEvent(fn func(name string, payload []byte, from string)) {
	if fn == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.userHandlers = append(n.userHandlers, fn)
}

func (n *Node) userDispatcher() {
	for {
		select {
		case <-n.stopEvents:
			return
		case ev := <-n.userQ:
			n.mu.Lock()
			hs := n.userHandlers
			n.mu.Unlock()
			for _, h := range hs {
				n.runUserHandler(h, ev)
			}
		}
	}
}

func (n *Node) runUserHandler(h func(string, []byte, string), ev userEvent) {
	defer func() {
		if r := recover(); r != nil {
			n.logger.Error("gossip: user event handler panicked", "name", ev.name, "panic", r, "stack", string(debug.Stack()))
		}
	}()
	h(ev.name, ev.payload, ev.from)
}
