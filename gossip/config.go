package gossip

import (
	"cmp"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
)

// Policy says who may join the cluster.
type Policy int

const (
	// Open lets anyone who can reach the gossip port join. If Key is set,
	// gossip is still encrypted with it.
	Open Policy = iota
	// Restricted requires the cluster key: gossip is encrypted with Key and
	// a member holding another key (or none) cannot decode it, so it never
	// joins.
	Restricted
	// Strict requires the cluster key and, in addition, admits only the
	// node IDs listed in AllowedNodes. Other members are refused by Serf's
	// merge delegate before they enter the member list, and their user
	// events and queries are ignored.
	Strict
)

// String returns "open", "restricted" or "strict".
func (p Policy) String() string {
	switch p {
	case Open:
		return "open"
	case Restricted:
		return "restricted"
	case Strict:
		return "strict"
	default:
		return fmt.Sprintf("policy(%d)", int(p))
	}
}

// Defaults used when the corresponding Config field is zero.
const (
	// DefaultJoinRetryMin is the first backoff after a failed join.
	DefaultJoinRetryMin = 200 * time.Millisecond
	// DefaultJoinRetryMax caps the join backoff.
	DefaultJoinRetryMax = 10 * time.Second
	// DefaultRejoinInterval is how often a joined member re-joins peers
	// that are not alive.
	DefaultRejoinInterval = 5 * time.Second
	// DefaultLeavePropagateDelay is how long a graceful leave lingers.
	DefaultLeavePropagateDelay = time.Second
	// DefaultEventBuffer is the capacity of the Events channel.
	DefaultEventBuffer = 256
)

// Size limits.
const (
	// MaxNodeIDLen is the longest accepted NodeID in bytes.
	MaxNodeIDLen = 128
	// MaxUserEventSize is the largest name + payload, in bytes, that
	// Broadcast accepts. It equals Serf's default UserEventSizeLimit; the
	// envelope Graft adds (sender ID) is allowed for on top of it.
	MaxUserEventSize = 512
	// MaxQuerySize is the largest name + payload, in bytes, that Query
	// accepts (Serf's default QuerySizeLimit is 1024 bytes for the encoded
	// query, which includes the sender's name and address).
	MaxQuerySize = 768
	// MaxQueryResponseSize is the largest reply payload, in bytes, that an
	// OnQuery handler may return (Serf's QueryResponseSizeLimit minus
	// Graft's envelope and Serf's encoding). Larger replies are turned into
	// an error reply.
	MaxQueryResponseSize = 900
)

// Config configures a Node. The zero value of every optional field means its
// documented default. New copies the Config; the caller may reuse it.
type Config struct {
	// NodeID is this member's Serf node name. Required, at most
	// MaxNodeIDLen bytes, and it must stay the same across restarts so that
	// the others recognise the member.
	NodeID string

	// BindAddr is the IP the gossip listener binds (TCP and UDP). Default
	// "0.0.0.0".
	BindAddr string
	// BindPort is the gossip port (TCP and UDP). 0 picks a free port (see
	// Node.LocalMember for the one picked); production members should set a
	// fixed port, conventionally 7946.
	BindPort int
	// AdvertiseAddr is the IP other members use to reach this one. Default:
	// BindAddr, or a private interface address when BindAddr is 0.0.0.0.
	AdvertiseAddr string
	// AdvertisePort is the port other members use. Default: the bound port.
	AdvertisePort int

	// Tags are this member's tags, visible to every member (Member.Tags).
	// Serf limits their encoded size to 512 bytes.
	Tags map[string]string

	// Key is the cluster key: 16, 24 or 32 bytes, used as the Serf/memberlist
	// gossip encryption key (AES-GCM). Required for Restricted and Strict;
	// optional for Open.
	Key []byte
	// KeyringFile, if set, is where Serf records this member's gossip keys
	// whenever they change (InstallKey, UseKey, RemoveKey), and where a
	// restarted member reads them again: its keys, the first one primary,
	// are used with Key added. Optional.
	KeyringFile string
	// Policy is the admission policy. Default Open.
	Policy Policy
	// AllowedNodes lists the node IDs admitted under Strict, including this
	// member's own. Every member should use the same list. Ignored under
	// other policies.
	AllowedNodes []string
	// Admit, if set, is asked about every other member before it enters
	// this member's list: when states are merged (a join, a push-pull) and
	// for every alive message, tag updates included. A non-nil error
	// refuses it (a whole merge is refused when one member of it is); a
	// member refused on a tag update stays listed with its previous tags.
	// The caller logs refusals. It must be fast, must not call back into
	// the Node, and must be safe for concurrent use.
	Admit func(Member) error

	// Discovery lists the sources of peer addresses to join. Addresses of
	// this member itself are skipped. Empty means a single-member cluster
	// until another member joins this one.
	Discovery []Discoverer
	// JoinRetryMin and JoinRetryMax bound the exponential backoff between
	// failed initial join attempts. Defaults 200ms and 10s.
	JoinRetryMin, JoinRetryMax time.Duration
	// RejoinInterval is how often, once joined, the member re-discovers
	// peers and joins those that are not alive in its view (including
	// members it saw fail). This heals partitions that outlasted the
	// suspicion timeout and brings back restarted members, which Serf alone
	// does only slowly (its reconnect is randomised, every 30s). Default 5s.
	RejoinInterval time.Duration
	// LeavePropagateDelay is how long a graceful leave stays up after
	// broadcasting the leave, so that peers learn it before probing. Default
	// 1s (Serf's default).
	LeavePropagateDelay time.Duration
	// SnapshotPath, if set, is the file where Serf records known members so
	// that a restarted member re-joins them even when discovery finds
	// nothing. Optional.
	SnapshotPath string

	// Transport, if set, replaces memberlist's network transport (chaos
	// tests use an in-memory one). BindAddr/BindPort are then only used as
	// the names memberlist advertises through the transport, and Graft's
	// inbound gossip guard (see MemberlistConfig) is not installed: a custom
	// transport checks what it delivers itself.
	Transport memberlist.NodeAwareTransport
	// MemberlistConfig, if set, is called with memberlist's
	// DefaultLANConfig before Graft applies its own settings, so it can tune
	// timers (ProbeInterval, ProbeTimeout, SuspicionMult, GossipInterval,
	// PushPullInterval, TCPTimeout, ...) and CIDRsAllowed. Graft then
	// overwrites Name, BindAddr, BindPort, AdvertiseAddr, AdvertisePort,
	// SecretKey, Keyring, GossipVerifyIncoming, GossipVerifyOutgoing,
	// HandoffQueueDepth (1024), Transport, Logger and LogOutput; Serf in
	// turn overwrites Events, Conflict, Delegate, Merge, Alive, Ping,
	// DelegateProtocol* and ProtocolVersion. Graft also sets Serf's
	// UserEventSizeLimit (1024 bytes), QuerySizeLimit (1024),
	// QueryResponseSizeLimit (1200), MaxQueueDepth (4096, MinQueueDepth 0),
	// EventBuffer and QueryBuffer (512).
	//
	// memberlist's own limits on what peers send (push/pull node count and
	// state size, user-message size, decompressed size) are constants, not
	// Config fields. Unless Transport is set, Graft wraps memberlist's
	// network transport in a guard that applies tighter limits to
	// unencrypted inbound gossip before memberlist decodes it: at most
	// 16,384 nodes and 4 MiB of Serf state per push/pull, 64 KiB per TCP
	// user message, 8 MiB for a decompressed TCP frame and 64 KiB for a
	// decompressed UDP packet, 16 push/pull streams at once; frames over
	// them are dropped and logged. TCPTimeout bounds how long the guard
	// waits for a frame's header.
	MemberlistConfig func(*memberlist.Config)

	// Logger receives this package's logs and Serf's and memberlist's
	// (levels mapped from their [DEBUG]/[INFO]/[WARN]/[ERR] prefixes). Nil
	// means slog.Default().
	Logger *slog.Logger

	// broadcastTimeout, if positive, replaces Serf's BroadcastTimeout
	// (tests).
	broadcastTimeout time.Duration
}

// withDefaults returns a copy of c with defaults filled in. Slices and maps
// are copied so the caller may reuse c.
func (c Config) withDefaults() Config {
	out := c
	out.BindAddr = cmp.Or(c.BindAddr, "0.0.0.0")
	out.JoinRetryMin = cmp.Or(c.JoinRetryMin, DefaultJoinRetryMin)
	out.JoinRetryMax = cmp.Or(c.JoinRetryMax, DefaultJoinRetryMax)
	out.RejoinInterval = cmp.Or(c.RejoinInterval, DefaultRejoinInterval)
	out.LeavePropagateDelay = cmp.Or(c.LeavePropagateDelay, DefaultLeavePropagateDelay)
	out.Logger = cmp.Or(c.Logger, slog.Default())
	out.Tags = maps.Clone(c.Tags)
	if out.Tags == nil {
		out.Tags = map[string]string{}
	}
	out.Key = slices.Clone(c.Key)
	out.AllowedNodes = slices.Clone(c.AllowedNodes)
	out.Discovery = slices.Clone(c.Discovery)
	return out
}

// Validate reports the first problem with c, naming the field. It checks c
// as given (zero durations are accepted: they mean the default).
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	switch {
	case c.NodeID == "":
		return bad("NodeID is required")
	case len(c.NodeID) > MaxNodeIDLen:
		return bad("NodeID is %d bytes, at most %d allowed", len(c.NodeID), MaxNodeIDLen)
	case strings.ContainsAny(c.NodeID, "/ \t\n"):
		return bad("NodeID %q must not contain '/' or whitespace", c.NodeID)
	}
	if c.BindAddr != "" && net.ParseIP(c.BindAddr) == nil {
		return bad("BindAddr %q is not an IP address", c.BindAddr)
	}
	if c.AdvertiseAddr != "" && net.ParseIP(c.AdvertiseAddr) == nil {
		return bad("AdvertiseAddr %q is not an IP address", c.AdvertiseAddr)
	}
	if c.BindPort < 0 || c.BindPort > 65535 {
		return bad("BindPort (%d) must be between 0 and 65535", c.BindPort)
	}
	if c.AdvertisePort < 0 || c.AdvertisePort > 65535 {
		return bad("AdvertisePort (%d) must be between 0 and 65535", c.AdvertisePort)
	}
	switch len(c.Key) {
	case 0, 16, 24, 32:
	default:
		return bad("Key is %d bytes, must be 16, 24 or 32", len(c.Key))
	}
	switch c.Policy {
	case Open:
	case Restricted:
		if len(c.Key) == 0 {
			return bad("Key is required when Policy is %s", c.Policy)
		}
	case Strict:
		if len(c.Key) == 0 {
			return bad("Key is required when Policy is %s", c.Policy)
		}
		if len(c.AllowedNodes) == 0 {
			return bad("AllowedNodes is required when Policy is %s", c.Policy)
		}
		if !slices.Contains(c.AllowedNodes, c.NodeID) {
			return bad("AllowedNodes must include this member's NodeID %q when Policy is %s", c.NodeID, c.Policy)
		}
	default:
		return bad("Policy (%d) is unknown", int(c.Policy))
	}
	for i, d := range c.Discovery {
		if d == nil {
			return bad("Discovery[%d] is nil", i)
		}
	}
	for name, d := range map[string]time.Duration{
		"JoinRetryMin": c.JoinRetryMin, "JoinRetryMax": c.JoinRetryMax,
		"RejoinInterval": c.RejoinInterval, "LeavePropagateDelay": c.LeavePropagateDelay,
	} {
		if d < 0 {
			return bad("%s (%s) must not be negative", name, d)
		}
	}
	minRetry := cmp.Or(c.JoinRetryMin, DefaultJoinRetryMin)
	maxRetry := cmp.Or(c.JoinRetryMax, DefaultJoinRetryMax)
	if maxRetry < minRetry {
		return bad("JoinRetryMax (%s) must be equal or greater than JoinRetryMin (%s)", maxRetry, minRetry)
	}
	return nil
}
