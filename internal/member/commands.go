package member

import (
	"context"
	"fmt"

	"github.com/eleven-am/graft/internal/errs"
	"github.com/eleven-am/graft/internal/wf"
	"github.com/eleven-am/graft/internal/wire"
)

// MaxCommandBytes is the largest encoded dev command: Serf's user-event
// limit (512 bytes) less the event name and envelope.
const MaxCommandBytes = 400

// commandEvent is the Serf user-event name dev commands travel under.
const commandEvent = "graft-cmd"

// CommandHandler runs a dev command (graft.CommandHandler).
type CommandHandler func(ctx context.Context, from string, params interface{}) error

// RegisterCommand registers the handler for a command name, replacing any
// earlier one.
func (m *Member) RegisterCommand(name string, h CommandHandler) {
	m.mu.Lock()
	m.commands[name] = h
	m.mu.Unlock()
}

// checkCommand refuses an encoded command over MaxCommandBytes or with
// params nested deeper than wf.MaxDepth.
func checkCommand(name string, payload []byte) error {
	if len(payload) > MaxCommandBytes {
		return fmt.Errorf("%w: %q is %d bytes encoded, over the limit of %d", errs.ErrInvalidCommand, name, len(payload), MaxCommandBytes)
	}
	if err := checkParamsDepth(payload); err != nil {
		return fmt.Errorf("%w: %q: %w", errs.ErrInvalidCommand, name, err)
	}
	return nil
}

// Broadcast sends the encoded command name to every member and runs this
// member's handler (see graft.Manager.BroadcastCommand).
func (m *Member) Broadcast(ctx context.Context, name string, payload []byte) error {
	if err := checkCommand(name, payload); err != nil {
		return err
	}
	if g := m.net().Gossip(); g != nil {
		if err := g.Broadcast(commandEvent, payload); err != nil {
			return fmt.Errorf("%w: %q: %v", errs.ErrInvalidCommand, name, err)
		}
	}
	return m.runCommand(ctx, m.cfg.NodeID, payload)
}

// Query sends the encoded command name to every member and collects their
// outcomes (see graft.Manager.QueryCommand).
func (m *Member) Query(ctx context.Context, name string, payload []byte) (map[string]error, error) {
	if err := checkCommand(name, payload); err != nil {
		return nil, err
	}
	out := map[string]error{}
	g := m.net().Gossip()
	if g == nil {
		out[m.cfg.NodeID] = m.runCommand(ctx, m.cfg.NodeID, payload)
		return out, nil
	}
	replies, err := g.Query(ctx, commandEvent, payload)
	for id, r := range replies {
		out[id] = r.Err
	}
	if err != nil && len(out) == 0 {
		return nil, fmt.Errorf("%w: %q: %v", errs.ErrInvalidCommand, name, err)
	}
	return out, nil
}

// commandWire is a dev command as it travels.
type commandWire struct {
	Command string      `json:"command"`
	Params  interface{} `json:"params"`
}

// decodeCommand decodes a dev command payload sent by another member (or
// by this one): at most MaxCommandBytes of JSON naming a command, its params
// nested at most wf.MaxDepth deep (checked before decoding). Errors wrap
// ErrInvalidCommand.
func decodeCommand(payload []byte) (commandWire, error) {
	var cw commandWire
	if len(payload) > MaxCommandBytes {
		return cw, fmt.Errorf("%w: %d bytes, over the limit of %d", errs.ErrInvalidCommand, len(payload), MaxCommandBytes)
	}
	if err := checkParamsDepth(payload); err != nil {
		return cw, fmt.Errorf("%w: %w", errs.ErrInvalidCommand, err)
	}
	if err := wire.StrictJSON(payload, &cw); err != nil {
		return commandWire{}, fmt.Errorf("%w: decoding: %v", errs.ErrInvalidCommand, err)
	}
	if cw.Command == "" {
		return commandWire{}, fmt.Errorf("%w: empty command name", errs.ErrInvalidCommand)
	}
	return cw, nil
}

// runCommand decodes a command payload and runs its local handler.
func (m *Member) runCommand(ctx context.Context, from string, payload []byte) error {
	cw, err := decodeCommand(payload)
	if err != nil {
		return fmt.Errorf("received from %q: %w", from, err)
	}
	m.mu.Lock()
	h := m.commands[cw.Command]
	m.mu.Unlock()
	if h == nil {
		return fmt.Errorf("%w: %q", errs.ErrUnknownCommand, cw.Command)
	}
	if err := safeRun(func() error { return h(ctx, from, cw.Params) }); err != nil {
		return fmt.Errorf("command %q: %w", cw.Command, err)
	}
	return nil
}

// checkParamsDepth refuses an encoded command whose params nest deeper than
// wf.MaxDepth (graft.MaxStateDepth). The params sit one level inside the
// command's object, so they are as deep as the payload less one.
func checkParamsDepth(payload []byte) error {
	if d := wf.Depth(payload) - 1; d > wf.MaxDepth {
		return fmt.Errorf("params are %w", &wf.DepthError{Depth: d, Limit: wf.MaxDepth})
	}
	return nil
}

// safeRun runs fn, turning a panic into an error.
func safeRun(fn func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("handler panicked: %v", v)
		}
	}()
	return fn()
}
