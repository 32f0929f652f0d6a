package gossip

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// mdnsService returns a service type no other test run uses, or skips the
// test where this machine cannot multicast (the real mDNS needs it).
func mdnsService(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	svc := "_g" + hex.EncodeToString(b) + "._tcp"
	stop, err := MDNS(svc).Advertise(Self{NodeID: "probe", Addr: "127.0.0.1", Port: 1, Logger: testLogger(t, "probe")})
	if err != nil {
		t.Skipf("no multicast here: %v", err)
	}
	require.NoError(t, stop())
	return svc
}

func TestMDNSPeersLeaveOutSelf(t *testing.T) {
	t.Parallel()
	svc := mdnsService(t)
	a, b := MDNS(svc), MDNS(svc)
	stopA, err := a.Advertise(Self{NodeID: "a", Addr: "127.0.0.1", Port: 7101, Logger: testLogger(t, "a")})
	require.NoError(t, err)
	defer stopA()
	stopB, err := b.Advertise(Self{NodeID: "b", Addr: "127.0.0.1", Port: 7102, Logger: testLogger(t, "b")})
	require.NoError(t, err)
	defer stopB()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []string
	require.Eventually(t, func() bool {
		got, err = a.Peers(ctx)
		return err == nil && len(got) > 0
	}, 10*time.Second, 10*time.Millisecond, "a never found b (last error %v)", err)
	require.Equal(t, []string{"127.0.0.1:7102"}, got)

	_, err = MDNS("_other._tcp").Advertise(Self{NodeID: "c", Addr: "0.0.0.0", Port: 1})
	require.ErrorContains(t, err, "cannot advertise")
}

func TestMDNSFormsCluster(t *testing.T) {
	t.Parallel()
	svc := mdnsService(t)
	var nodes []*Node
	for _, id := range []string{"m1", "m2", "m3"} {
		cfg := testConfig(t, id)
		cfg.Discovery = []Discoverer{MDNS(svc)}
		nodes = append(nodes, startNode(t, cfg))
	}
	waitMembers(t, nodes, []string{"m1", "m2", "m3"})
	require.NoError(t, nodes[2].Stop()) // stops advertising too
}
