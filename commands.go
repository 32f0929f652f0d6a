package graft

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/eleven-am/graft/internal/member"
)

// MaxCommandBytes is the largest encoded DevCommand BroadcastCommand sends:
// Serf's user-event limit (512 bytes) less the event name and envelope.
const MaxCommandBytes = member.MaxCommandBytes

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
	m.member.RegisterCommand(name, member.CommandHandler(h))
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
	payload, err := m.encodeCommand(cmd)
	if err != nil {
		return err
	}
	return m.member.Broadcast(ctx, cmd.Command, payload)
}

// encodeCommand checks that the member runs and encodes cmd.
func (m *Manager) encodeCommand(cmd *DevCommand) ([]byte, error) {
	if err := m.member.Running(); err != nil {
		return nil, err
	}
	if cmd == nil || cmd.Command == "" {
		return nil, fmt.Errorf("%w: empty command name", ErrInvalidCommand)
	}
	payload, err := json.Marshal(cmd)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: params are not JSON-encodable: %v", ErrInvalidCommand, cmd.Command, err)
	}
	return payload, nil
}

// QueryCommand sends cmd to every member, this one included, runs their
// handlers and collects each member's outcome: nil for success or the
// handler's error, keyed by node ID. It returns when every member answered
// or ctx ends; members that did not answer in time are absent. On a lone
// member only the local handler runs. Commands are refused before sending
// as by BroadcastCommand.
func (m *Manager) QueryCommand(ctx context.Context, cmd *DevCommand) (map[string]error, error) {
	payload, err := m.encodeCommand(cmd)
	if err != nil {
		return nil, err
	}
	return m.member.Query(ctx, cmd.Command, payload)
}
