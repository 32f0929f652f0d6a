package graft

import (
	"context"
	"net"
	"time"

	"github.com/cockroachdb/pebble/vfs"
	"github.com/hashicorp/memberlist"
	dbconfig "github.com/lni/dragonboat/v4/config"
)

// The parts of Config: discovery, cluster, engine, expert and TLS settings.
// Their defaults live in config.go.

// DiscoveryType names a way of finding the other members of a cluster.
type DiscoveryType string

// Discovery methods.
const (
	// DiscoveryStatic joins a fixed list of peers (StaticPeer).
	DiscoveryStatic DiscoveryType = "static"
	// DiscoveryMDNS finds peers on the local network by multicast DNS; for development.
	DiscoveryMDNS DiscoveryType = "mdns"
	// DiscoveryDNS resolves a DNS name (A/SRV records, e.g. a Kubernetes
	// headless service) to peers; for production.
	DiscoveryDNS DiscoveryType = "dns"
)

// StaticPeer is one known member for DiscoveryStatic.
type StaticPeer struct {
	// ID is the peer's node ID.
	ID string
	// Address is the peer's host name or IP address.
	Address string
	// Port is the peer's Raft port (the port of its BindAddr); its gossip
	// port is Port+1 unless GossipPort says otherwise.
	Port int
	// GossipPort overrides the peer's gossip port (its Cluster.GossipPort).
	GossipPort int
}

// DiscoveryConfig configures one discovery method. A member may use several.
type DiscoveryConfig struct {
	// Type selects the method.
	Type DiscoveryType
	// Static lists the peers for DiscoveryStatic.
	Static []StaticPeer
	// Service is the mDNS service name (DiscoveryMDNS; default "_graft._tcp")
	// or the DNS name to resolve (DiscoveryDNS).
	Service string
}

// ClusterPolicy controls which members may join.
type ClusterPolicy string

// Cluster policies.
const (
	// ClusterPolicyOpen lets any member join (development).
	ClusterPolicyOpen ClusterPolicy = "open"
	// ClusterPolicyRestricted requires the cluster key (staging).
	ClusterPolicyRestricted ClusterPolicy = "restricted"
	// ClusterPolicyStrict requires the cluster key and a listed node ID (production).
	ClusterPolicyStrict ClusterPolicy = "strict"
)

// ClusterConfig configures membership and placement.
type ClusterConfig struct {
	// Policy controls who may join. Default (zero) ClusterPolicyOpen.
	Policy ClusterPolicy
	// Key is the cluster key for the restricted and strict policies.
	Key []byte
	// AllowedNodes lists the node IDs the strict policy admits.
	AllowedNodes []string
	// ExpectedMembers, when set, overrides how a new cluster's founding
	// members are chosen: it bootstraps once gossip sees this many members
	// configured with the same number (like Consul's bootstrap_expect), the
	// lowest node IDs founding it. Zero means: the members of the static
	// discovery list (this one counted), or with mDNS/DNS only, one founder
	// elected after BootstrapWait. Above one it makes a member without
	// Discovery part of a cluster too (others must find it).
	ExpectedMembers int
	// BootstrapWait is how long a member that finds its peers by mDNS or DNS
	// only (no static list, no ExpectedMembers) looks for a running cluster
	// to join before the members it sees agree on a founder: the one with
	// the lowest node ID bootstraps alone and the others join it. Default
	// 5s; zero means the default.
	BootstrapWait time.Duration
	// ReplicationFactor is how many members hold a replica of each shard.
	// Default 3, capped at the number of members.
	ReplicationFactor int
	// GossipPort is the port of the Serf gossip listener (TCP and UDP).
	// Default: the port of BindAddr plus one.
	GossipPort int
	// FailureGrace is how long a member gossip reports failed keeps its
	// replicas before they are moved to other members: a member that comes
	// back within it (a restart, a short partition) moves nothing. A member
	// that leaves gracefully (Stop) has its replicas moved at once. Default
	// 30s; zero means the default.
	FailureGrace time.Duration
	// ShardCount is the number of Raft shards workflows are spread over. It
	// is fixed when the data directory is first created. Zero means the
	// count recorded in the data directory, or 8 for a new one; a non-zero
	// count that differs from the recorded one is refused.
	ShardCount int
}

// EngineConfig tunes workflow execution.
type EngineConfig struct {
	// WorkerCount is how many steps this member runs at once. Default
	// 2×CPU cores, at least 4; zero means the default.
	WorkerCount int
	// MaxRetries is how many times a step that returned an error is retried
	// before the workflow fails. Default 3; zero means the default; use
	// NoRetries for none.
	MaxRetries int
	// RetryDelay is the base of the exponential backoff between retries
	// (doubled per failure, with jitter). Default 1s; zero means the default.
	RetryDelay time.Duration
	// MaxRetryDelay caps the backoff. Default 5m; zero means the default.
	MaxRetryDelay time.Duration
	// QueueBufferSize is how many ready tasks may be claimed ahead of the
	// workers, so that claiming overlaps execution. Default 4×WorkerCount,
	// at least 64; zero means the default.
	QueueBufferSize int
	// StepTimeout cancels a step's context when it runs longer. Zero (the
	// default) means no timeout.
	StepTimeout time.Duration
	// BlockedTimeout fails a workflow whose pending nodes are all refused
	// by CanStart, with nothing running, for this long. Default 5m; zero
	// means the default.
	BlockedTimeout time.Duration
	// Retention is how long completed, failed and stopped workflows are
	// kept before they are purged. Default 7 days; zero means the default.
	Retention time.Duration
	// PurgeInterval is how often terminal workflows past Retention are
	// purged. Default 1m; zero means the default.
	PurgeInterval time.Duration
	// DrainTimeout is how long Stop waits for running steps before it
	// cancels them. Default 30s; zero means the default. A step that
	// ignores the cancellation is abandoned 5s later: Stop returns without
	// it, its outcome is discarded, and it runs again after a restart.
	DrainTimeout time.Duration
	// MaxStateBytes limits a workflow's state (JSON bytes), at start and
	// after every step. Default 1 MiB; zero means the default.
	MaxStateBytes int
	// RequestTimeout bounds calls that take no context (StartWorkflow,
	// GetWorkflowStatus). Default 10s; zero means the default.
	RequestTimeout time.Duration
	// EventBufferSize is how many events each event handler may fall behind
	// before further events are dropped for it. Default 4096; zero means the
	// default.
	EventBufferSize int
}

// NoRetries as EngineConfig.MaxRetries disables retries.
const NoRetries = -1

// ExpertConfig holds rarely tuned storage knobs.
type ExpertConfig struct {
	// RTTMillisecond is the expected round trip between members in
	// milliseconds; Raft timeouts are multiples of it. Default 10 on a
	// lone member.
	RTTMillisecond uint64
	// SnapshotEntries is how many Raft log entries are applied between log
	// compactions. Default 10000; zero means the default.
	SnapshotEntries uint64
	// CompactionOverhead is how many applied entries a compaction keeps, so
	// a slightly lagging replica can catch up from the log. Default 5000;
	// zero means the default.
	CompactionOverhead uint64
	// MinFreeDiskBytes refuses new workflows (ErrStorageFull) before the
	// data directory's file system gets below this many free bytes, counting
	// what accepted commands will write; running workflows go on, but their
	// steps' writes wait (and are retried) below half of it. It must cover
	// Pebble's preallocated WAL files and flushes (about 40 MB); keep it at
	// least 64 MiB. Half of it (at most 1 GiB) is also the size of the
	// member's emergency reserve, DataDir/EMERGENCY_RESERVE, which the first
	// write that finds the disk full (filled by another program) releases
	// and retries into, so that the member stays up. Default 64 MiB; zero
	// means the default; set NoDiskCheck to disable both.
	MinFreeDiskBytes int64
	// Memberlist, if set, tunes the gossip layer's memberlist configuration
	// (probe, suspicion and gossip timers) before Graft applies its own
	// settings; Graft then overwrites the name, addresses and ports, keys,
	// transport and logger. Nil keeps memberlist's LAN defaults.
	Memberlist func(*memberlist.Config)
	// Network, if set, carries the member's three links (gossip, Raft and
	// member RPC) instead of TCP/UDP: the chaos harness passes its
	// fault-injecting in-process network (chaos.Network). With it, BindAddr
	// is "name:port" where name is this member's endpoint on the network.
	Network Network
	// FS, if set, is the file system of everything the member stores under
	// DataDir: the state machines' Pebble database and Dragonboat's Raft
	// log and snapshots, and the free space the disk guard reads
	// (FS.GetDiskUsage). It is for fault injection in tests (the chaos
	// harness passes a chaos.FaultFS to fill or slow one member's disk);
	// nil means the real file system. It is Pebble's vfs.FS, which users
	// construct with vfs.Default, vfs.NewMem or a wrapper of either; Graft
	// adapts it to the fork of that interface Dragonboat takes.
	//
	// A write the FS fails is fatal, as on a real disk, unless it failed
	// with ENOSPC and the emergency reserve (see MinFreeDiskBytes) was there
	// to release: Pebble panics on the next commit after a failed WAL
	// write, and Dragonboat on a failed Raft log write. With the free-space
	// check on (the default), or with FS set, Dragonboat runs in its error
	// injection mode, where that panic only stops the member's Raft step
	// worker; so Graft watches every write and fsync through the FS, and a
	// member whose storage write failed stops by itself, reporting
	// ReadinessStorageFailed (see there) rather than lingering with frozen
	// replicas. A failure under Pebble's own commit can still end the
	// process first.
	FS vfs.FS
}

// Network is a replacement for the member's links; chaos.Network is one.
// Implementations must be safe for concurrent use.
type Network interface {
	// MemberlistTransport is the gossip transport of endpoint name.
	MemberlistTransport(name string) memberlist.NodeAwareTransport
	// RaftTransportFactory is the Raft transport of endpoint name.
	RaftTransportFactory(name string) dbconfig.TransportFactory
	// Listen is the member RPC listener of endpoint name.
	Listen(name string) net.Listener
	// Dialer dials other endpoints' listeners from endpoint from.
	Dialer(from string) func(ctx context.Context, addr string) (net.Conn, error)
}

// TLSConfig turns on mutual TLS for a member's Raft and member RPC links.
// Every member of a cluster needs it (with certificates from the same CA)
// and a Cluster.Key (which encrypts gossip). A member's node ID is bound to
// its certificate: the certificate's URI SAN graft://NODE-ID, or, without
// one, its subject common name, must equal Config.NodeID, and a peer is
// known by the ID its certificate names. The files are read again when they
// change (checked at most once a second on new connections), so
// certificates rotate without a restart. The member RPC also admits
// operators' certificates (URI SAN graft-operator://NAME) for the operator
// methods only; see OperatorConfig.
type TLSConfig struct {
	// CAFile is the PEM file of the cluster CA certificate(s) that every
	// member's certificate must chain to.
	CAFile string
	// CertFile and KeyFile are this member's PEM certificate (with any
	// intermediates) and private key; the certificate must be valid for
	// client and server authentication.
	CertFile, KeyFile string
	// RevokedSerials lists certificate serial numbers (hexadecimal; colons
	// and case ignored) refused even when their chain is valid.
	RevokedSerials []string
}

// OperatorConfig says who may call a member's operator methods: the member
// RPC methods the graft command calls (members, shards, list, count and
// show workflows, pause, resume and stop them, broadcast and query dev
// commands). Every member serves them on its member RPC port; a lone
// member opens that port for them alone when Start is given a grpcPort
// above 0 (port 0: no port, as before).
//
// With TLS, a caller presents a certificate from the cluster CA (the
// handshake checks its chain, validity period and RevokedSerials) that
// names an operator, URI SAN graft-operator://NAME, or a member. Under the
// strict policy NAME must be listed in Names, and a member's node ID in
// Cluster.AllowedNodes. An operator's certificate never passes as a
// member's: member methods refuse it. Without TLS, callers from loopback,
// from Networks, and from an address a member of the cluster advertises
// are admitted. Everyone else is refused with an error saying why, logged
// once per caller.
type OperatorConfig struct {
	// Names lists the operators (the NAME of their certificates' URI SAN
	// graft-operator://NAME) admitted under the strict policy; other
	// policies admit any operator certificate from the cluster CA. Each
	// name is 1 to 128 bytes of letters, digits, '.', '_' and '-'.
	Names []string
	// Networks lists CIDR prefixes ("10.0.0.0/8", "fd00::/8") whose
	// callers are admitted without TLS, besides loopback and the cluster's
	// members. Ignored with TLS (certificates decide). Empty means none.
	Networks []string
}

// NoDiskCheck as Expert.MinFreeDiskBytes disables the free-space check.
const NoDiskCheck = -1
