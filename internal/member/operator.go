package member

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/eleven-am/graft/gossip"
	"github.com/eleven-am/graft/internal/certs"
	"github.com/eleven-am/graft/internal/operator"
	"github.com/eleven-am/graft/internal/rpc"
	"google.golang.org/grpc/peer"
)

// Operator access to the member RPC. Every member serves the operator
// methods (internal/operator) with Config.Operator, to the callers its
// operator guard admits; a lone member given a grpcPort opens its RPC port
// for them alone (serveOperators).

// operatorMethod is the rpcMethods entry of operator method name.
func operatorMethod(name string) rpcMethod {
	om, ok := operator.Lookup(name)
	if !ok {
		panic(fmt.Sprintf("member: %q is no operator method", name)) // a method table defect
	}
	return rpcMethod{operator: true, needs: needNothing, rpcHandler: rpcHandler{
		decode: om.Decode,
		serve: func(ctx context.Context, m *Member, _ rpcServing, req any) ([]byte, error) {
			if m.cfg.Operator == nil {
				return nil, &rpc.CodedError{Code: rpc.CodeUnavailable, Err: fmt.Errorf("member %s serves no operator methods", m.cfg.NodeID)}
			}
			return om.Serve(ctx, m.cfg.Operator, req)
		},
	}}
}

// newOperatorGuard returns the member's operator guard, once its TLS
// identity is loaded (auth nil without TLS).
func (m *Member) newOperatorGuard(auth *peerAuth) *operator.Guard {
	cc := m.cfg.Cluster
	return operator.NewGuard(m.cfg.NodeID, operator.Access{
		TLS:          auth != nil,
		Strict:       cc.Policy == gossip.Strict,
		Operators:    m.cfg.Operators.Names,
		AllowedNodes: cc.AllowedNodes,
		Networks:     m.cfg.Operators.Networks,
	}, func(ip netip.Addr) bool { return m.net().IsMemberAddr(ip) }, m.log)
}

// checkOperator refuses a call of an operator method from a caller the
// operator guard does not admit.
func (m *Member) checkOperator(ctx context.Context) error {
	m.mu.Lock()
	g := m.opGuard
	m.mu.Unlock()
	if g == nil {
		return &rpc.CodedError{Code: rpc.CodeUnavailable, Err: fmt.Errorf("member %s has not started yet", m.cfg.NodeID)}
	}
	c := operator.Caller{Certs: rpc.PeerCertificates(ctx)}
	if p, ok := peer.FromContext(ctx); ok {
		c.Addr = p.Addr
	}
	return g.Check(c)
}

// refuseOperatorCert refuses a call of a member method from a caller whose
// certificate names an operator: operators call operator methods only.
func (m *Member) refuseOperatorCert(ctx context.Context, method string) error {
	chain := rpc.PeerCertificates(ctx)
	if len(chain) == 0 {
		return nil
	}
	if name := certs.OperatorName(chain[0]); name != "" {
		return &rpc.CodedError{Code: rpc.CodeInvalid, Kind: operator.KindRefused,
			Err: fmt.Errorf("member %s refuses %s from operator %q: an operator certificate calls operator methods only", m.cfg.NodeID, strconv.Quote(method), name)}
	}
	return nil
}

// handleLoneRPC serves the RPC port of a lone member: operator methods
// only.
func (m *Member) handleLoneRPC(ctx context.Context, method string, payload []byte) ([]byte, error) {
	if spec, ok := rpcMethods[method]; !ok || !spec.operator {
		return nil, &rpc.CodedError{Code: rpc.CodeInvalid,
			Err: fmt.Errorf("member %s runs alone: its RPC port serves operator methods only, not %q", m.cfg.NodeID, method)}
	}
	return m.handleRPC(ctx, method, payload)
}

// serveOperators opens a lone member's RPC port, grpcPort on BindAddr's
// host (Expert.Network's listener if set), for the operator methods.
func (m *Member) serveOperators(grpcPort int) error {
	var l net.Listener
	if n := m.cfg.Expert.Network; n != nil {
		l = n.Listen(m.endpoint())
	} else {
		var err error
		if l, err = net.Listen("tcp", net.JoinHostPort(m.endpoint(), strconv.Itoa(grpcPort))); err != nil {
			return fmt.Errorf("listening for operator RPC on port %d: %w", grpcPort, err)
		}
	}
	srv, err := rpc.NewServer(rpc.HandlerFunc(m.handleLoneRPC), m.rpcConfig(), m.log)
	if err != nil {
		_ = l.Close()
		return err
	}
	srv.Serve(l)
	m.mu.Lock()
	m.loneRPC = srv
	m.mu.Unlock()
	m.log.Info("serving operator methods", "rpc_addr", l.Addr().String())
	return nil
}

// stopOperators closes a lone member's RPC port, waiting up to the drain
// timeout for calls in progress.
func (m *Member) stopOperators() {
	m.mu.Lock()
	srv := m.loneRPC
	m.loneRPC = nil
	m.mu.Unlock()
	if srv != nil {
		srv.Stop(m.cfg.Engine.DrainTimeout)
	}
}
