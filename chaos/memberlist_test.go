package chaos_test

import (
	"io"
	"log"
	"testing"
	"time"

	"github.com/eleven-am/graft/chaos"
	"github.com/eleven-am/graft/internal/testlog"
	"github.com/hashicorp/memberlist"
	"github.com/stretchr/testify/require"
)

// startMemberlist starts a memberlist for endpoint name on n with short
// timeouts; it is shut down at the end of the test.
func startMemberlist(t *testing.T, n *chaos.Network, name string) *memberlist.Memberlist {
	t.Helper()
	conf := memberlist.DefaultLocalConfig()
	conf.Name = name
	conf.Transport = n.MemberlistTransport(name)
	conf.ProbeInterval = 100 * time.Millisecond
	conf.ProbeTimeout = 50 * time.Millisecond
	conf.GossipInterval = 20 * time.Millisecond
	conf.TCPTimeout = 200 * time.Millisecond
	conf.SuspicionMult = 2
	conf.Logger = log.New(testlog.New(t, "["+name+"] "), "", log.Lmicroseconds)
	m, err := memberlist.Create(conf)
	require.NoError(t, err)
	t.Cleanup(func() {
		if err := m.Shutdown(); err != nil {
			t.Errorf("%s: Shutdown: %v", name, err)
		}
	})
	return m
}

func requireMembers(t *testing.T, want int, ms ...*memberlist.Memberlist) {
	t.Helper()
	eventually(t, 15*time.Second, func() error {
		for _, m := range ms {
			if got := m.NumMembers(); got != want {
				return errorf("%s sees %d members, want %d", m.LocalNode().Name, got, want)
			}
		}
		return nil
	})
}

func TestMemberlistIsolateAndHeal(t *testing.T) {
	t.Parallel()
	n := newNetwork(t, 7)
	m1 := startMemberlist(t, n, "n1")
	m2 := startMemberlist(t, n, "n2")
	m3 := startMemberlist(t, n, "n3")

	require.Equal(t, n.IP("n1").String(), m1.LocalNode().Addr.String())
	joined, err := m2.Join([]string{n.MemberlistAddr("n1")})
	require.NoError(t, err)
	require.Equal(t, 1, joined)
	_, err = m3.Join([]string{n.MemberlistAddr("n1")})
	require.NoError(t, err)
	requireMembers(t, 3, m1, m2, m3)

	start := time.Now()
	n.Isolate("n3")
	requireMembers(t, 2, m1, m2)
	t.Logf("n3 declared dead after %v", time.Since(start))
	require.NotZero(t, n.Stats().Cut)

	n.Heal()
	_, err = m1.Join([]string{n.MemberlistAddr("n3")})
	require.NoError(t, err)
	requireMembers(t, 3, m1, m2, m3)
	t.Logf("healed and converged after %v", time.Since(start))
}

func TestMemberlistTransportFaults(t *testing.T) {
	t.Parallel()
	n := newNetwork(t, 1)
	a := n.MemberlistTransport("a")
	b := n.MemberlistTransport("b")

	ip, port, err := a.FinalAdvertiseAddr("", 0)
	require.NoError(t, err)
	require.Equal(t, n.IP("a").String(), ip.String())
	require.Equal(t, chaos.MemberlistPort, port)

	// A packet by fake IP, by name and by node name; the buffer is copied.
	buf := []byte("p1")
	_, err = a.WriteTo(buf, n.MemberlistAddr("b"))
	require.NoError(t, err)
	buf[0] = 'x'
	p := <-b.PacketCh()
	require.Equal(t, "p1", string(p.Buf))
	require.Equal(t, n.MemberlistAddr("a"), p.From.String())
	_, err = a.WriteTo([]byte("p2"), "b:7946")
	require.NoError(t, err)
	require.Equal(t, "p2", string((<-b.PacketCh()).Buf))
	_, err = a.WriteToAddress([]byte("p3"), memberlist.Address{Name: "b"})
	require.NoError(t, err)
	require.Equal(t, "p3", string((<-b.PacketCh()).Buf))

	// Across a cut a packet vanishes (decided synchronously) and a dial fails.
	n.Isolate("b")
	_, err = a.WriteTo([]byte("lost"), n.MemberlistAddr("b"))
	require.NoError(t, err, "like UDP, a lost packet is no error")
	require.Empty(t, b.PacketCh())
	_, err = a.DialTimeout(n.MemberlistAddr("b"), time.Second)
	require.ErrorIs(t, err, chaos.ErrUnreachable)
	n.Heal()

	// A delayed packet arrives later.
	n.Delay("a", "b", 20*time.Millisecond)
	sent := time.Now()
	_, err = a.WriteTo([]byte("late"), n.MemberlistAddr("b"))
	require.NoError(t, err)
	require.Equal(t, "late", string((<-b.PacketCh()).Buf))
	require.GreaterOrEqual(t, time.Since(sent), 20*time.Millisecond)
	n.Heal()

	// Streams: established ones break across a cut and work again after Heal.
	accepted := make(chan []byte, 1)
	go func() {
		c := <-b.StreamCh()
		got := make([]byte, 2)
		_, _ = io.ReadFull(c, got)
		accepted <- got
		_ = c.Close()
	}()
	c, err := a.DialTimeout(n.MemberlistAddr("b"), time.Second)
	require.NoError(t, err)
	defer c.Close()
	n.Partition([]string{"a"}, []string{"b"})
	_, err = c.Write([]byte("no"))
	require.ErrorIs(t, err, chaos.ErrUnreachable)
	n.Heal()
	_, err = c.Write([]byte("ok"))
	require.NoError(t, err)
	require.Equal(t, "ok", string(<-accepted))

	// Shutdown is idempotent; a shut down endpoint refuses dials.
	require.NoError(t, b.Shutdown())
	require.NoError(t, b.Shutdown())
	_, err = a.DialTimeout(n.MemberlistAddr("b"), time.Second)
	require.ErrorContains(t, err, "connection refused")
	// A restarted member gets a new transport under the same name and IP.
	b2 := n.MemberlistTransport("b")
	_, err = a.WriteTo([]byte("again"), n.MemberlistAddr("b"))
	require.NoError(t, err)
	require.Equal(t, "again", string((<-b2.PacketCh()).Buf))
}
