package chaos

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// Wildcard matches any endpoint in [Network.Drop] and [Network.Delay] rules.
const Wildcard = "*"

// Hooks observe or veto individual sends. Both functions are optional and may be
// called concurrently from many goroutines; they must not block for long. They
// run without the Network's lock held, so they may call Network methods.
type Hooks struct {
	// PreSend is called for every attempted send (a packet, a Raft message
	// batch or snapshot chunk, a stream write, or a new connection with size 0)
	// before the fault rules are applied. Returning false drops it.
	PreSend func(from, to string, size int) bool
	// PostSend is called after a send was handed to the receiving endpoint
	// (after its delay, if any).
	PostSend func(from, to string, size int)
}

// Stats counts the decisions taken by [Network.Allowed] and the transports.
type Stats struct {
	// Sent counts sends that were let through (including delayed ones).
	Sent uint64
	// Dropped counts sends refused for any reason: a cut link, a Drop rule or
	// a PreSend hook.
	Dropped uint64
	// Cut counts the subset of Dropped refused by a partition or isolation.
	Cut uint64
	// Delayed counts the subset of Sent held back by a Delay rule.
	Delayed uint64
}

type link struct{ from, to string }

// Network is an in-process network between named endpoints with injectable
// faults. It is safe for concurrent use. Drop decisions use a random source
// seeded by [NewNetwork].
//
// Endpoint names are free-form strings without ':' or '/' (e.g. "n1"). Each
// endpoint that needs an IP (memberlist advertises one) gets a unique fake
// loopback address 127.100.x.y, assigned on first use and stable for the
// Network's lifetime; see [Network.IP].
type Network struct {
	seed int64
	done chan struct{}
	wg   sync.WaitGroup // delayed deliveries

	mu       sync.Mutex
	closed   bool
	rng      *rand.Rand
	hooks    Hooks
	groups   map[string]int // endpoint -> partition group; nil = no partition
	isolated map[string]bool
	drops    map[link]float64
	delays   map[link]time.Duration
	stats    Stats

	ips     map[string]net.IP // endpoint -> fake IP
	ipNames map[string]string // fake IP string -> endpoint

	conns      map[*faultConn]struct{}
	listeners  map[string]*listener
	gossip     map[string]*memberlistTransport
	raftByAddr map[string]*raftTransport
}

// NewNetwork returns a healthy Network whose random drops are drawn from seed.
func NewNetwork(seed int64) *Network {
	return &Network{
		seed:       seed,
		done:       make(chan struct{}),
		rng:        rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15)),
		isolated:   make(map[string]bool),
		drops:      make(map[link]float64),
		delays:     make(map[link]time.Duration),
		ips:        make(map[string]net.IP),
		ipNames:    make(map[string]string),
		conns:      make(map[*faultConn]struct{}),
		listeners:  make(map[string]*listener),
		gossip:     make(map[string]*memberlistTransport),
		raftByAddr: make(map[string]*raftTransport),
	}
}

// Seed returns the seed the Network was created with; print it when a test
// fails so the run can be repeated.
func (n *Network) Seed() int64 { return n.seed }

// Partition splits the endpoints into groups: endpoints in different groups
// cannot talk to each other. Every endpoint not listed in any group belongs to
// one extra, implicit group, so Partition([]string{"n1"}) cuts n1 off from all
// other endpoints while they still reach each other. A new call replaces the
// previous partition; isolation, drop and delay rules are kept. Partition()
// with no groups removes the partition. Listing a name in two groups panics.
func (n *Network) Partition(groups ...[]string) {
	m := make(map[string]int)
	for i, g := range groups {
		for _, name := range g {
			if j, dup := m[name]; dup && j != i {
				panic(fmt.Sprintf("chaos: Partition: %q is in groups %d and %d", name, j, i))
			}
			m[name] = i
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.groups = m
}

// Isolate cuts name off from every other endpoint, in both directions, until
// [Network.Heal]. Isolations accumulate: two isolated endpoints cannot reach
// each other either.
func (n *Network) Isolate(name string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.isolated[name] = true
}

// Reconnect ends the isolation of name set by [Network.Isolate], leaving
// every other fault in place (a partition still applies to it).
func (n *Network) Reconnect(name string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.isolated, name)
}

// Drop makes sends from -> to fail with probability pct, a fraction in [0, 1]
// (0.25 drops a quarter; the etcd rafttest convention). Either name may be
// [Wildcard]. The rule is directional and replaces an earlier rule for the same
// pair. When several rules match, the most specific wins: (from, to), then
// (from, *), then (*, to), then (*, *); so Drop("*", "*", 1) followed by
// Drop("n1", "n2", 0) blocks everything except n1 -> n2. pct outside [0, 1]
// panics.
//
// What a drop means depends on the link: a memberlist packet or a Raft message
// batch vanishes; a write on a stream (memberlist stream, RPC connection), a
// new connection or a Raft snapshot chunk fails with an [ErrUnreachable]
// error, because a stream cannot silently lose bytes.
func (n *Network) Drop(from, to string, pct float64) {
	if math.IsNaN(pct) || pct < 0 || pct > 1 {
		panic(fmt.Sprintf("chaos: Drop(%q, %q): pct %v is not a fraction in [0, 1]", from, to, pct))
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.drops[link{from, to}] = pct
}

// Delay holds sends from -> to back for d before delivering them. Wildcards and
// rule precedence are as for [Network.Drop]. Raft messages on one connection
// stay in order; memberlist packets may overtake each other, like UDP; stream
// writes and dials block the caller for d. A negative d panics.
func (n *Network) Delay(from, to string, d time.Duration) {
	if d < 0 {
		panic(fmt.Sprintf("chaos: Delay(%q, %q): negative duration %v", from, to, d))
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.delays[link{from, to}] = d
}

// Heal clears all faults: the partition, isolations, drop and delay rules.
// Hooks and counters are kept. Messages already held back by a delay are still
// delivered.
func (n *Network) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.groups = nil
	clear(n.isolated)
	clear(n.drops)
	clear(n.delays)
}

// SetHooks replaces the hooks; the zero Hooks removes them.
func (n *Network) SetHooks(h Hooks) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.hooks = h
}

// Stats returns a snapshot of the counters.
func (n *Network) Stats() Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stats
}

// Allowed is the single decision point used by all transports: it reports
// whether a send from -> to may pass and how long it must be held back. It runs
// the PreSend hook (with size 0), then the partition and isolation, then the
// drop rule (drawing from the seeded random source only when a rule with
// 0 < pct < 1 matches), then the delay rule, and counts the outcome in
// [Network.Stats]. A send from an endpoint to itself is always allowed.
func (n *Network) Allowed(from, to string) (ok bool, delay time.Duration) {
	return n.decide(from, to, 0)
}

func (n *Network) decide(from, to string, size int) (bool, time.Duration) {
	n.mu.Lock()
	pre := n.hooks.PreSend
	n.mu.Unlock()
	hookOK := pre == nil || pre(from, to, size)

	n.mu.Lock()
	defer n.mu.Unlock()
	if !hookOK {
		n.stats.Dropped++
		return false, 0
	}
	if from == to {
		n.stats.Sent++
		return true, 0
	}
	if n.cutLocked(from, to) {
		n.stats.Dropped++
		n.stats.Cut++
		return false, 0
	}
	if pct, ok := lookup(n.drops, from, to); ok && pct > 0 {
		if pct >= 1 || n.rng.Float64() < pct {
			n.stats.Dropped++
			return false, 0
		}
	}
	n.stats.Sent++
	d, _ := lookup(n.delays, from, to)
	if d > 0 {
		n.stats.Delayed++
	}
	return true, d
}

// cutLocked reports whether a partition or isolation separates from and to.
func (n *Network) cutLocked(from, to string) bool {
	if from == to {
		return false
	}
	if n.isolated[from] || n.isolated[to] {
		return true
	}
	if n.groups == nil {
		return false
	}
	gf, ok := n.groups[from]
	if !ok {
		gf = -1
	}
	gt, ok := n.groups[to]
	if !ok {
		gt = -1
	}
	return gf != gt
}

func lookup[V any](rules map[link]V, from, to string) (V, bool) {
	for _, l := range [...]link{{from, to}, {from, Wildcard}, {Wildcard, to}, {Wildcard, Wildcard}} {
		if v, ok := rules[l]; ok {
			return v, true
		}
	}
	var zero V
	return zero, false
}

func (n *Network) postSend(from, to string, size int) {
	n.mu.Lock()
	post := n.hooks.PostSend
	n.mu.Unlock()
	if post != nil {
		post(from, to, size)
	}
}

// IP returns the fake loopback IP of endpoint name (127.100.x.y), assigning
// the next free one on first use. Memberlist advertises it; every transport
// also accepts it in place of the name when resolving an address.
func (n *Network) IP(name string) net.IP {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ipLocked(name)
}

func (n *Network) ipLocked(name string) net.IP {
	if ip, ok := n.ips[name]; ok {
		return ip
	}
	i := len(n.ips) + 1
	if i > 0xffff {
		panic("chaos: more than 65535 endpoints")
	}
	ip := net.IPv4(127, 100, byte(i>>8), byte(i)).To4()
	n.ips[name] = ip
	n.ipNames[ip.String()] = name
	return ip
}

// endpointOf resolves an address ("n1", "n1:7946", "127.100.0.1:7946") to an
// endpoint name. Ports are ignored: an endpoint is identified by its host part.
func (n *Network) endpointOf(addr string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.endpointOfLocked(addr)
}

func (n *Network) endpointOfLocked(addr string) string {
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	if ip := net.ParseIP(host); ip != nil {
		if name, ok := n.ipNames[ip.String()]; ok {
			return name
		}
	}
	return host
}

// after runs fn after d on a goroutine tracked by the Network, unless the
// Network closes first. It reports false if the Network is already closed.
func (n *Network) after(d time.Duration, fn func()) bool {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return false
	}
	n.wg.Add(1)
	n.mu.Unlock()
	go func() {
		defer n.wg.Done()
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			fn()
		case <-n.done:
		}
	}()
	return true
}

// wait blocks for d, returning false early if a, b or c closes (nil channels
// are ignored).
func wait(d time.Duration, a, b, c <-chan struct{}) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-a:
	case <-b:
	case <-c:
	}
	return false
}

// Close stops the Network: it shuts down every transport and listener, closes
// every connection, discards messages still held back by a delay and waits for
// all of its goroutines. Stop the memberlists and NodeHosts using the Network
// first; afterwards every send fails. Close is idempotent.
func (n *Network) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	close(n.done)
	conns := make([]*faultConn, 0, len(n.conns))
	for c := range n.conns {
		conns = append(conns, c)
	}
	var ls []*listener
	for _, l := range n.listeners {
		ls = append(ls, l)
	}
	var gs []*memberlistTransport
	for _, g := range n.gossip {
		gs = append(gs, g)
	}
	var rs []*raftTransport
	for _, r := range n.raftByAddr {
		rs = append(rs, r)
	}
	n.mu.Unlock()

	for _, l := range ls {
		_ = l.Close()
	}
	for _, g := range gs {
		_ = g.Shutdown()
	}
	for _, r := range rs {
		_ = r.Close()
	}
	for _, c := range conns {
		_ = c.Close()
	}
	n.wg.Wait()
	return nil
}
