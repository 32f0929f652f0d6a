package graft_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eleven-am/graft"
	"github.com/eleven-am/graft/internal/certs"
	"github.com/eleven-am/graft/internal/hostile"
	"github.com/eleven-am/graft/internal/rpc"
	pb "github.com/lni/dragonboat/v4/raftpb"
	"github.com/stretchr/testify/require"
)

// tlsFiles writes a CA and certificates for members, and returns each
// member's files.
func tlsFiles(t *testing.T, members ...string) map[string]certs.Files {
	t.Helper()
	files, err := certs.Generate(t.TempDir(), members, nil, time.Hour)
	require.NoError(t, err)
	return files
}

// withTLS turns on TLS for a member with files f, under the strict policy
// naming allowed.
func withTLS(f certs.Files, allowed ...string) func(*graft.Config) {
	return func(c *graft.Config) {
		c.TLS = graft.TLSConfig{CAFile: f.CA, CertFile: f.Cert, KeyFile: f.Key}
		c.Cluster.Key = bytes.Repeat([]byte{5}, 32)
		c.Cluster.Policy = graft.ClusterPolicyStrict
		c.Cluster.AllowedNodes = allowed
	}
}

// clientTLS loads files as a TLS client identity that trusts any server,
// so only the member's verdict on the client counts.
func clientTLS(t *testing.T, f certs.Files) *tls.Config {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	require.NoError(t, err)
	return &tls.Config{Certificates: []tls.Certificate{pair}, InsecureSkipVerify: true}
}

// A cluster with TLS runs workflows; a client without a certificate, with
// one from another CA, with a valid one naming an unlisted node (strict)
// or with an expired one is refused on the Raft and the member RPC ports
// and can neither start nor read a workflow.
func TestTLSClusterRefusesStrangers(t *testing.T) {
	longScenario(t)
	ids := []string{"n1", "n2", "n3"}
	files := tlsFiles(t, "n1", "n2", "n3", "n9")
	addrs := newMemberAddrs(t, ids...)
	var cfgs []*graft.Config
	for _, a := range addrs {
		cfgs = append(cfgs, memberConfig(t, a, 0, staticPeers(addrs...), withTLS(files[a.id], ids...)))
	}
	var runs atomic.Int64
	members, rpcPorts := startOnRPCPorts(t, cfgs, seqNodes(t, &runs))
	requireOneCluster(t, members)
	startSeq(t, members[0].m, "over-tls")
	for _, cm := range members {
		waitDone(t, cm.m, "over-tls")
	}

	// The strangers' identities.
	other := tlsFiles(t, "n2")["n2"] // another CA, a member's name
	expired := expiredFiles(t, files["n1"], "n2")
	strangers := map[string]*tls.Config{
		"no certificate":            {InsecureSkipVerify: true},
		"another CA":                clientTLS(t, other),
		"an unlisted node (strict)": clientTLS(t, files["n9"]),
		"an expired certificate":    clientTLS(t, expired),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	read := append(binary.BigEndian.AppendUint64(nil, 1), `{"op":"status","id":"over-tls"}`...)

	// The ports do speak TLS: a member's certificate gets through, and the
	// member presents its own.
	conn, err := tls.Dial("tcp", members[0].cfg.BindAddr, clientTLS(t, files["n2"]))
	require.NoError(t, err, "a member's certificate on the Raft port")
	require.Equal(t, "n1", certs.PeerID(conn.ConnectionState()))
	require.NoError(t, conn.Close())
	conn, err = tls.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(rpcPorts[0])), clientTLS(t, files["n2"]))
	require.NoError(t, err, "a member's certificate on the RPC port")
	require.Equal(t, "n1", certs.PeerID(conn.ConnectionState()))
	require.NoError(t, conn.Close())
	for name, cfg := range strangers {
		for i, cm := range members {
			// Member RPC: the handshake fails, so no call is served.
			client, err := rpc.NewClient(nil, rpc.Config{ClientTLS: cfg, HandshakeTimeout: time.Second})
			require.NoError(t, err)
			cctx, ccancel := context.WithTimeout(ctx, 3*time.Second)
			_, err = client.Call(cctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(rpcPorts[i])), "read", read)
			ccancel()
			require.Error(t, err, "%s reading through %s's RPC", name, cm.cfg.NodeID)
			cctx, ccancel = context.WithTimeout(ctx, 3*time.Second)
			_, err = client.Call(cctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(rpcPorts[i])), "apply", read)
			ccancel()
			require.Error(t, err, "%s starting through %s's RPC", name, cm.cfg.NodeID)
			require.NoError(t, client.Close())

			// Raft: the member refuses the handshake (the client learns it
			// at its first read at the latest).
			conn, err = tls.DialWithDialer(&net.Dialer{Timeout: 3 * time.Second}, "tcp", cm.cfg.BindAddr, cfg)
			if err == nil {
				_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
				_, _ = conn.Write([]byte("hello"))
				_, err = conn.Read(make([]byte, 1))
				_ = conn.Close()
			}
			require.Error(t, err, "%s on %s's Raft port", name, cm.cfg.NodeID)
			require.NotErrorIs(t, err, os.ErrDeadlineExceeded, "%s on %s's Raft port: the member neither refused nor answered", name, cm.cfg.NodeID)
		}
	}

	// Plaintext to the TLS ports gets nowhere either.
	plain, err := rpc.NewClient(nil, rpc.Config{HandshakeTimeout: time.Second})
	require.NoError(t, err)
	cctx, ccancel := context.WithTimeout(ctx, 3*time.Second)
	_, err = plain.Call(cctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(rpcPorts[0])), "read", read)
	ccancel()
	require.Error(t, err)
	require.NoError(t, plain.Close())

	startSeq(t, members[1].m, "after-strangers")
	for _, cm := range members {
		waitDone(t, cm.m, "after-strangers")
	}
}

// A member whose certificate names another node ID does not start.
func TestTLSCertificateMustNameTheMember(t *testing.T) {
	files := tlsFiles(t, "n1", "n2")
	addrs := newMemberAddrs(t, "n1")
	cfg := memberConfig(t, addrs[0], 0, staticPeers(addrs...), withTLS(files["n2"], "n1"))
	m := graft.NewWithConfig(cfg)
	t.Cleanup(func() { require.NoError(t, m.Stop()) })
	err := m.Start(context.Background(), 0)
	require.ErrorIs(t, err, graft.ErrInvalidConfig)
	require.ErrorContains(t, err, `names node "n2", but NodeID is "n1"`)

	cfg = memberConfig(t, addrs[0], 0, staticPeers(addrs...), func(c *graft.Config) {
		c.TLS = graft.TLSConfig{CAFile: files["n1"].CA}
	})
	err = graft.NewWithConfig(cfg).Start(context.Background(), 0)
	require.ErrorIs(t, err, graft.ErrInvalidConfig)
	require.ErrorContains(t, err, "TLS needs TLS.CAFile, TLS.CertFile and TLS.KeyFile")
	require.ErrorContains(t, err, "TLS needs Cluster.Key too")
}

// expiredFiles issues, from the CA of like, a certificate for id that
// expired an hour ago.
func expiredFiles(t *testing.T, like certs.Files, id string) certs.Files {
	t.Helper()
	auth, err := certs.LoadAuthority(like.CA, filepath.Join(filepath.Dir(like.CA), "ca-key.pem"))
	require.NoError(t, err)
	now := time.Now()
	c, k, err := auth.Issue(id, nil, now.Add(-2*time.Hour), now.Add(-time.Hour))
	require.NoError(t, err)
	out := certs.Files{CA: like.CA, Cert: filepath.Join(t.TempDir(), id+"-expired.pem"), Key: filepath.Join(t.TempDir(), id+"-expired-key.pem")}
	require.NoError(t, os.WriteFile(out.Cert, c, 0o600))
	require.NoError(t, os.WriteFile(out.Key, k, 0o600))
	return out
}

// Under the restricted policy any certificate from the cluster CA passes
// the handshake, but a node that is no member of the cluster still cannot
// call the member RPC, and a member's certificate cannot speak on the Raft
// port for another member's address.
func TestTLSCertificatesAreBoundToMembers(t *testing.T) {
	longScenario(t)
	ids := []string{"n1", "n2", "n3"}
	files := tlsFiles(t, "n1", "n2", "n3", "n9")
	addrs := newMemberAddrs(t, ids...)
	var cfgs []*graft.Config
	for _, a := range addrs {
		cfgs = append(cfgs, memberConfig(t, a, 0, staticPeers(addrs...), func(c *graft.Config) {
			withTLS(files[a.id])(c)
			c.Cluster.Policy, c.Cluster.AllowedNodes = graft.ClusterPolicyRestricted, nil
		}))
	}
	var runs atomic.Int64
	members, rpcPorts := startOnRPCPorts(t, cfgs, seqNodes(t, &runs))
	requireOneCluster(t, members)

	// RPC: n9's certificate is valid for the cluster, n9 is no member.
	client, err := rpc.NewClient(nil, rpc.Config{ClientTLS: clientTLS(t, files["n9"])})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, client.Close()) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	read := append(binary.BigEndian.AppendUint64(nil, 1), `{"op":"status","id":"x"}`...)
	_, err = client.Call(ctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(rpcPorts[0])), "read", read)
	require.ErrorContains(t, err, `refuses a call from node "n9": not a member of this cluster`)

	// Raft: n2's certificate with a batch from n2's own address keeps its
	// connection; the same certificate claiming another address loses it.
	hb := pb.Message{Type: pb.Heartbeat, ShardID: 1, From: 2, To: 1, Term: 1}
	open := func(source string) error {
		conn, err := tls.Dial("tcp", members[0].cfg.BindAddr, clientTLS(t, files["n2"]))
		require.NoError(t, err)
		defer conn.Close()
		_, err = conn.Write(hostile.RaftBatch(source, hb))
		require.NoError(t, err)
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(time.Second)))
		_, err = conn.Read(make([]byte, 1))
		return err
	}
	require.ErrorIs(t, open(members[1].cfg.BindAddr), os.ErrDeadlineExceeded, "a member speaking for itself is kept")
	err = open(members[2].cfg.BindAddr)
	require.Error(t, err)
	require.NotErrorIs(t, err, os.ErrDeadlineExceeded, "a member speaking for another member's address is cut off")

	startSeq(t, members[1].m, "bound")
	for _, cm := range members {
		waitDone(t, cm.m, "bound")
	}
}
