package member

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"maps"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/eleven-am/graft/internal/certs"
	"github.com/eleven-am/graft/internal/operator"
	"github.com/eleven-am/graft/internal/rpc"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// operatorPosingAsMember is an operator's certificate whose common name
// is a member's node ID.
func operatorPosingAsMember(t *testing.T, id string) *x509.Certificate {
	t.Helper()
	now := time.Now()
	ca, err := certs.NewAuthority("test CA", now, time.Hour)
	require.NoError(t, err)
	c, _, err := ca.IssueOperator(id, now.Add(-time.Minute), now.Add(time.Hour))
	require.NoError(t, err)
	block, _ := pem.Decode(c)
	cert, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	require.Equal(t, id, cert.Subject.CommonName)
	return cert
}

// withPeerCert is ctx as a member RPC handler sees a TLS caller with cert.
func withPeerCert(ctx context.Context, cert *x509.Certificate) context.Context {
	return peer.NewContext(ctx, &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4242},
		AuthInfo: credentials.TLSInfo{State: tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}}})
}

// An operator's certificate never passes as a member's: the links between
// members refuse it at the handshake, the member RPC's listener lets it
// through for the operator guard, and every member method refuses it.
func TestOperatorCertificateNeverPassesAsAMember(t *testing.T) {
	t.Parallel()
	cert := operatorPosingAsMember(t, "n2")
	m := &Member{state: stateRunning}
	m.cfg.NodeID = "n1"
	m.cfg.Cluster.AllowedNodes = []string{"n1", "n2"}
	a := &peerAuth{m: m}
	require.ErrorContains(t, a.check(certs.NodeID(cert), cert), `the certificate names operator "n2", not a member`)
	require.NoError(t, a.rpcCheck(certs.NodeID(cert), cert))

	ctx := withPeerCert(t.Context(), cert)
	seeds := rpcSeeds(t)
	for _, name := range slices.Sorted(maps.Keys(seeds)) {
		method := string(seeds[name][0])
		if !rpcMethods[method].guarded {
			continue
		}
		_, err := m.handleRPC(ctx, method, seeds[name][1])
		var ce *rpc.CodedError
		require.ErrorAs(t, err, &ce, method)
		require.Equal(t, operator.KindRefused, ce.Kind, method)
		require.ErrorContains(t, err, `refuses "`+method+`" from operator "n2": an operator certificate calls operator methods only`)
	}
	_, err := m.handleRPC(ctx, "nope", nil)
	require.ErrorContains(t, err, "an operator certificate calls operator methods only")
}

// stubOperations answers op.members with the member's ID.
type stubOperations struct{ operator.Service }

func (stubOperations) Members(context.Context) (*operator.MembersAnswer, error) {
	return &operator.MembersAnswer{NodeID: "stub"}, nil
}

// A lone member given a grpcPort serves the operator methods there, and
// nothing else; the port closes with Stop.
func TestLoneMemberServesOnlyOperatorMethods(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.Cluster.ShardCount = 1
	cfg.Operator = stubOperations{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	m := New(cfg, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	require.NoError(t, m.Start(ctx, port))
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			require.NoError(t, m.Stop(nil))
		}
	})

	client, err := rpc.NewClient(nil, rpc.Config{})
	require.NoError(t, err)
	defer client.Close()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	out, err := client.Call(ctx, addr, operator.MethodMembers, nil)
	require.NoError(t, err)
	var ans operator.MembersAnswer
	require.NoError(t, json.Unmarshal(out, &ans))
	require.Equal(t, "stub", ans.NodeID)

	for name, s := range rpcSeeds(t) {
		if operator.IsMethod(string(s[0])) {
			continue
		}
		_, err := client.Call(ctx, addr, string(s[0]), s[1])
		var re *rpc.RemoteError
		require.ErrorAs(t, err, &re, name)
		require.Contains(t, re.Message, "runs alone: its RPC port serves operator methods only", name)
	}
	// A malformed operator request is refused by its decoder.
	_, err = client.Call(ctx, addr, operator.MethodShow, []byte(`{"id":""}`))
	require.ErrorContains(t, err, "no workflow id")

	require.NoError(t, m.Stop(nil))
	stopped = true
	_, err = client.Call(ctx, addr, operator.MethodMembers, nil)
	require.True(t, errors.Is(err, rpc.ErrUnreachable), "after Stop: %v", err)
}
