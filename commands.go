package graft

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/eleven-am/graft/internal/wf"
)

// MaxCommandBytes is the largest encoded DevCommand BroadcastCommand sends:
// Serf's user-event limit (512 bytes) less the event name and envelope.
const MaxCommandBytes = 400

// commandEvent is the Serf user-event name dev commands travel under.
const commandEvent = "graft-cmd"

// CommandHandler runs a dev command on a member. from is the sending
// member's node ID; params is the command's Params decoded from JSON (maps,
// slices, float64, string, bool or nil).
type CommandHandler func(ctx context.Context, from string, params interface{}) error

// DevCommand is a command broadcast to every member.
type DevCommand struct {
	// Command names the handler.
	Command string `json:"command"`
	// Params is passed to the handler; it must be JSON-encodable.
	Params interface{} `json:"params,omitempty"`
}

// WrapHandler adapts a handler taking typed params: params are re-encoded
// to JSON and decoded into T; a decode failure is returned as the handler's
// error.
func WrapHandler[T any](fn func(ctx context.Context, from string, params T) error) CommandHandler {
	return func(ctx context.Context, from string, params interface{}) error {
		var p T
		b, err := json.Marshal(params)
		if err != nil {
			return fmt.Errorf("%w: params: %v", ErrInvalidCommand, err)
		}
		if err := json.Unmarshal(b, &p); err != nil {
			return fmt.Errorf("%w: decoding params into %T: %v", ErrInvalidCommand, p, err)
		}
		return fn(ctx, from, p)
	}
}

// RegisterCommandHandler registers the handler for a command name,
// replacing any earlier one.
func (m *Manager) RegisterCommandHandler(name string, h CommandHandler) error {
	if name == "" {
		return fmt.Errorf("%w: empty command name", ErrInvalidCommand)
	}
	if h == nil {
		return fmt.Errorf("%w: nil handler for %q", ErrInvalidCommand, name)
	}
	m.mu.Lock()
	m.commands[name] = h
	m.mu.Unlock()
	return nil
}

// BroadcastCommand sends cmd to every member, this one included. This
// member's handler runs before BroadcastCommand returns, and its error is
// returned; other members run theirs as the command reaches them and log
// their errors. A command over MaxCommandBytes encoded, with params nested
// deeper than MaxStateDepth, or with params that are not JSON-encodable, is
// refused before anything is sent; members also refuse a received command
// whose params nest too deep.
func (m *Manager) BroadcastCommand(ctx context.Context, cmd *DevCommand) error {
	if _, err := m.running(); err != nil {
		return err
	}
	if cmd == nil || cmd.Command == "" {
		return fmt.Errorf("%w: empty command name", ErrInvalidCommand)
	}
	payload, err := json.Marshal(cmd)
	if err != nil {
		return fmt.Errorf("%w: %q: params are not JSON-encodable: %v", ErrInvalidCommand, cmd.Command, err)
	}
	if len(payload) > MaxCommandBytes {
		return fmt.Errorf("%w: %q is %d bytes encoded, over the limit of %d", ErrInvalidCommand, cmd.Command, len(payload), MaxCommandBytes)
	}
	if err := checkParamsDepth(payload); err != nil {
		return fmt.Errorf("%w: %q: %w", ErrInvalidCommand, cmd.Command, err)
	}
	c := m.currentCluster()
	if c != nil && c.gossip != nil {
		if err := c.gossip.Broadcast(commandEvent, payload); err != nil {
			return fmt.Errorf("%w: %q: %v", ErrInvalidCommand, cmd.Command, err)
		}
	}
	return m.runCommand(ctx, m.cfg.NodeID, payload)
}

// commandWire is a dev command as it travels.
type commandWire struct {
	Command string      `json:"command"`
	Params  interface{} `json:"params"`
}

// decodeCommand decodes a dev command payload sent by another member (or
// by this one): at most MaxCommandBytes of JSON naming a command, its params
// nested at most MaxStateDepth deep (checked before decoding). Errors wrap
// ErrInvalidCommand.
func decodeCommand(payload []byte) (commandWire, error) {
	var wire commandWire
	if len(payload) > MaxCommandBytes {
		return wire, fmt.Errorf("%w: %d bytes, over the limit of %d", ErrInvalidCommand, len(payload), MaxCommandBytes)
	}
	if err := checkParamsDepth(payload); err != nil {
		return wire, fmt.Errorf("%w: %w", ErrInvalidCommand, err)
	}
	if err := strictJSON(payload, &wire); err != nil {
		return commandWire{}, fmt.Errorf("%w: decoding: %v", ErrInvalidCommand, err)
	}
	if wire.Command == "" {
		return commandWire{}, fmt.Errorf("%w: empty command name", ErrInvalidCommand)
	}
	return wire, nil
}

// runCommand decodes a command payload and runs its local handler.
func (m *Manager) runCommand(ctx context.Context, from string, payload []byte) error {
	wire, err := decodeCommand(payload)
	if err != nil {
		return fmt.Errorf("received from %q: %w", from, err)
	}
	m.mu.Lock()
	h := m.commands[wire.Command]
	m.mu.Unlock()
	if h == nil {
		return fmt.Errorf("%w: %q", ErrUnknownCommand, wire.Command)
	}
	if err := safeRun(func() error { return h(ctx, from, wire.Params) }); err != nil {
		return fmt.Errorf("command %q: %w", wire.Command, err)
	}
	return nil
}

// checkParamsDepth refuses an encoded command whose params nest deeper than
// MaxStateDepth. The params sit one level inside the command's object, so
// they are as deep as the payload less one.
func checkParamsDepth(payload []byte) error {
	if d := wf.Depth(payload) - 1; d > MaxStateDepth {
		return fmt.Errorf("params are %w", &wf.DepthError{Depth: d, Limit: MaxStateDepth})
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

// QueryCommand sends cmd to every member, this one included, runs their
// handlers and collects each member's outcome: nil for success or the
// handler's error, keyed by node ID. It returns when every member answered
// or ctx ends; members that did not answer in time are absent. On a lone
// member only the local handler runs. Commands are refused before sending
// as by BroadcastCommand.
func (m *Manager) QueryCommand(ctx context.Context, cmd *DevCommand) (map[string]error, error) {
	if _, err := m.running(); err != nil {
		return nil, err
	}
	if cmd == nil || cmd.Command == "" {
		return nil, fmt.Errorf("%w: empty command name", ErrInvalidCommand)
	}
	payload, err := json.Marshal(cmd)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: params are not JSON-encodable: %v", ErrInvalidCommand, cmd.Command, err)
	}
	if len(payload) > MaxCommandBytes {
		return nil, fmt.Errorf("%w: %q is %d bytes encoded, over the limit of %d", ErrInvalidCommand, cmd.Command, len(payload), MaxCommandBytes)
	}
	if err := checkParamsDepth(payload); err != nil {
		return nil, fmt.Errorf("%w: %q: %w", ErrInvalidCommand, cmd.Command, err)
	}
	out := map[string]error{}
	c := m.currentCluster()
	if c == nil || c.gossip == nil {
		out[m.cfg.NodeID] = m.runCommand(ctx, m.cfg.NodeID, payload)
		return out, nil
	}
	replies, err := c.gossip.Query(ctx, commandEvent, payload)
	for id, r := range replies {
		out[id] = r.Err
	}
	if err != nil && len(out) == 0 {
		return nil, fmt.Errorf("%w: %q: %v", ErrInvalidCommand, cmd.Command, err)
	}
	return out, nil
}
