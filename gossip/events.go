package gossip

import (
	"time"

	"github.com/hashicorp/serf/serf"
)

// eventLoop reads Serf's event channel. It never blocks: membership events
// go to the buffered Events channel, user events and queries to their
// dispatcher queues, and whatever does not fit is dropped and counted. Serf
// delivers events from its own goroutines (and from Broadcast's caller),
// which must never wait on Graft.
func (n *Node) eventLoop() {
	for {
		select {
		case e := <-n.serfCh:
			n.handleSerfEvent(e)
		case <-n.stopEvents:
			// Serf has shut down. Events still in flight land in serfCh's
			// buffer (larger than Serf's relay buffer) and are discarded.
			return
		}
	}
}

func (n *Node) handleSerfEvent(e serf.Event) {
	switch e := e.(type) {
	case serf.MemberEvent:
		kind, ok := eventKindFromSerf(e.Type)
		if !ok {
			return
		}
		now := time.Now()
		for _, m := range e.Members {
			n.emit(Event{Kind: kind, Member: memberFromSerf(m), At: now})
		}
	case serf.UserEvent:
		from, payload, err := decodeUserEnvelope(e.Payload)
		if err != nil {
			n.logger.Warn("gossip: dropping malformed user event", "name", e.Name, "error", err)
			return
		}
		if !n.admission.admits(from) {
			n.logger.Debug("gossip: ignoring user event from refused member", "name", e.Name, "from", from)
			return
		}
		select {
		case n.userQ <- userEvent{name: e.Name, payload: payload, from: from}:
		default:
			n.droppedUser.Add(1)
			n.logger.Warn("gossip: user event handler queue full, dropping event", "name", e.Name, "from", from)
		}
	case *serf.Query:
		if !n.admission.admits(e.SourceNode()) {
			n.logger.Debug("gossip: ignoring query from refused member", "name", e.Name, "from", e.SourceNode())
			return
		}
		select {
		case n.queryQ <- e:
		default:
			n.droppedQuery.Add(1)
			n.logger.Warn("gossip: query handler queue full, dropping query", "name", e.Name, "from", e.SourceNode())
		}
	}
}

func (n *Node) emit(ev Event) {
	select {
	case n.events <- ev:
		n.mu.Lock()
		n.dropWarned = false
		n.mu.Unlock()
	default:
		n.droppedEvents.Add(1)
		n.mu.Lock()
		warn := !n.dropWarned
		n.dropWarned = true
		n.mu.Unlock()
		if warn {
			n.logger.Warn("gossip: Events channel full, dropping membership events (nobody reading?)",
				"dropped_total", n.droppedEvents.Load())
		}
	}
}
