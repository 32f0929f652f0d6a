package gossip

import (
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/stretchr/testify/require"
)

// cuttableTransport wraps memberlist's network transport; while cut is set
// it drops every outgoing packet and refuses every outgoing stream. Giving
// all members the same flag partitions them from each other.
type cuttableTransport struct {
	*memberlist.NetTransport
	cut     *atomic.Bool
	packets atomic.Int64
}

var _ memberlist.NodeAwareTransport = (*cuttableTransport)(nil)

func (c *cuttableTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	c.packets.Add(1)
	if c.cut.Load() {
		return time.Now(), nil
	}
	return c.NetTransport.WriteToAddress(b, a)
}

func (c *cuttableTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return c.WriteToAddress(b, memberlist.Address{Addr: addr})
}

func (c *cuttableTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if c.cut.Load() {
		return nil, errors.New("partitioned")
	}
	return c.NetTransport.DialAddressTimeout(a, timeout)
}

func newCuttable(t *testing.T, cut *atomic.Bool) *cuttableTransport {
	t.Helper()
	nt, err := newNetTransport("127.0.0.1", 0, nil)
	require.NoError(t, err)
	return &cuttableTransport{NetTransport: nt, cut: cut}
}

// TestPartitionHeals cuts two members apart until each has declared the
// other failed (longer than the suspicion timeout), then heals the network:
// the rejoin loop makes them one cluster again without outside help.
func TestPartitionHeals(t *testing.T) {
	t.Parallel()
	var cut atomic.Bool
	ta, tb := newCuttable(t, &cut), newCuttable(t, &cut)
	// Memberlist stops gossiping to dead members at once and never probes
	// them, and Serf's own reconnect runs every 30s: only Graft's rejoin
	// loop can heal this within the test's deadline.
	noDeadGossip := func(c *memberlist.Config) {
		fastMemberlist(c)
		c.GossipToTheDeadTime = time.Millisecond
	}
	cfgA := testConfig(t, "h1")
	cfgA.Transport = ta
	cfgA.MemberlistConfig = noDeadGossip
	a := startNode(t, cfgA)
	cfgB := testConfig(t, "h2", addrOf(t, a))
	cfgB.Transport = tb
	cfgB.MemberlistConfig = noDeadGossip
	b := startNode(t, cfgB)
	waitMembers(t, []*Node{a, b}, []string{"h1", "h2"})

	cut.Store(true)
	require.Eventually(t, func() bool {
		return len(a.Members()) == 1 && len(b.Members()) == 1
	}, waitFor, 10*time.Millisecond, "members never noticed the partition")
	require.Positive(t, ta.packets.Load(), "the injected transport carries the gossip")

	healed := time.Now()
	cut.Store(false)
	waitMembers(t, []*Node{a, b}, []string{"h1", "h2"})
	t.Logf("partition healed %s after the network came back", time.Since(healed))
}
