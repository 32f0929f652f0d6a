package operator_test

import (
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/eleven-am/graft/internal/certs"
	"github.com/eleven-am/graft/internal/operator"
	"github.com/eleven-am/graft/internal/rpc"
	"github.com/stretchr/testify/require"
)

// issued are certificates of one CA: operators ops and eve, members n1
// and n9, and one naming nothing.
type issued struct {
	ops, eve, n1, n9, nameless *x509.Certificate
}

func issue(t *testing.T) issued {
	t.Helper()
	now := time.Now()
	ca, err := certs.NewAuthority("test CA", now, time.Hour)
	require.NoError(t, err)
	parse := func(pemBytes []byte, err error) *x509.Certificate {
		t.Helper()
		require.NoError(t, err)
		tlsCert, err := tlsLeaf(pemBytes)
		require.NoError(t, err)
		return tlsCert
	}
	op := func(name string) *x509.Certificate {
		c, _, err := ca.IssueOperator(name, now.Add(-time.Minute), now.Add(time.Hour))
		return parse(c, err)
	}
	member := func(id string) *x509.Certificate {
		c, _, err := ca.Issue(id, nil, now.Add(-time.Minute), now.Add(time.Hour))
		return parse(c, err)
	}
	nameless := member("x")
	nameless.URIs, nameless.Subject.CommonName = nil, ""
	return issued{ops: op("ops"), eve: op("eve"), n1: member("n1"), n9: member("n9"), nameless: nameless}
}

// countingHandler counts the records logged.
type countingHandler struct {
	mu sync.Mutex
	n  int
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(context.Context, slog.Record) error {
	h.mu.Lock()
	h.n++
	h.mu.Unlock()
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

func (h *countingHandler) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}

func addr(s string) net.Addr { return &net.TCPAddr{IP: net.ParseIP(s), Port: 4242} }

func TestGuard(t *testing.T) {
	t.Parallel()
	c := issue(t)
	member := netip.MustParseAddr("198.51.100.4")
	isMember := func(ip netip.Addr) bool { return ip == member }
	strict := operator.Access{TLS: true, Strict: true, Operators: []string{"ops"}, AllowedNodes: []string{"n1"}}
	open := operator.Access{TLS: true}
	plain := operator.Access{Networks: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	cases := []struct {
		name   string
		access operator.Access
		caller operator.Caller
		want   string // "" admits; else part of the refusal
	}{
		{"tls: listed operator, strict", strict, operator.Caller{Certs: []*x509.Certificate{c.ops}}, ""},
		{"tls: unlisted operator, strict", strict, operator.Caller{Certs: []*x509.Certificate{c.eve}}, `operator "eve": not listed in Operators.Names (policy strict)`},
		{"tls: any operator, not strict", open, operator.Caller{Certs: []*x509.Certificate{c.eve}}, ""},
		{"tls: listed member, strict", strict, operator.Caller{Certs: []*x509.Certificate{c.n1}}, ""},
		{"tls: unlisted member, strict", strict, operator.Caller{Certs: []*x509.Certificate{c.n9}}, `node "n9": not listed in Cluster.AllowedNodes`},
		{"tls: no certificate", strict, operator.Caller{Addr: addr("127.0.0.1")}, "without a client certificate"},
		{"tls: loopback is no certificate", open, operator.Caller{Addr: addr("127.0.0.1")}, "without a client certificate"},
		{"tls: certificate naming nothing", open, operator.Caller{Certs: []*x509.Certificate{c.nameless}}, "names no operator"},
		{"plain: loopback v4", plain, operator.Caller{Addr: addr("127.0.0.1")}, ""},
		{"plain: loopback v6", plain, operator.Caller{Addr: addr("::1")}, ""},
		{"plain: loopback mapped", plain, operator.Caller{Addr: addr("::ffff:127.0.0.1")}, ""},
		{"plain: configured network", plain, operator.Caller{Addr: addr("10.20.30.40")}, ""},
		{"plain: member", plain, operator.Caller{Addr: addr(member.String())}, ""},
		{"plain: stranger", plain, operator.Caller{Addr: addr("192.0.2.7")}, "refuses an operator call from 192.0.2.7: not loopback, not in Operators.Networks and not a member"},
		{"plain: stranger next to the network", plain, operator.Caller{Addr: addr("11.0.0.1")}, "from 11.0.0.1"},
		{"plain: no address", plain, operator.Caller{}, "not an IP address"},
		{"plain: a certificate does not help", plain, operator.Caller{Certs: []*x509.Certificate{c.ops}, Addr: addr("192.0.2.7")}, "from 192.0.2.7"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := operator.NewGuard("n1", tc.access, isMember, slog.New(slog.DiscardHandler))
			err := g.Check(tc.caller)
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.want)
			var ce *rpc.CodedError
			require.True(t, errors.As(err, &ce), "%T", err)
			require.Equal(t, operator.KindRefused, ce.Kind)
			require.Equal(t, rpc.CodeInvalid, ce.Code)
		})
	}
}

func TestGuardLogsEachRefusedCallerOnce(t *testing.T) {
	t.Parallel()
	h := &countingHandler{}
	g := operator.NewGuard("n1", operator.Access{}, nil, slog.New(h))
	for range 3 {
		require.Error(t, g.Check(operator.Caller{Addr: addr("192.0.2.7")}))
	}
	require.Equal(t, 1, h.count())
	require.Error(t, g.Check(operator.Caller{Addr: addr("192.0.2.8")}))
	require.Equal(t, 2, h.count())
	require.NoError(t, g.Check(operator.Caller{Addr: addr("127.0.0.1")}))
	require.Equal(t, 2, h.count())
}
