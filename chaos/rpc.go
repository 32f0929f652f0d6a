package chaos

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"
)

// RPCPort is the cosmetic port of member RPC listeners. Routing ignores ports.
const RPCPort = 7947

// Listen returns the member RPC listener of endpoint name. Connections come
// from [Network.Dialer]; each is one end of a net.Pipe whose writes go through
// [Network.Allowed]. Closing the listener refuses new dials but leaves accepted
// connections open, as with TCP. Listen panics if name already has an open
// listener; after Close it may listen again (a restarted member).
func (n *Network) Listen(name string) net.Listener {
	l := &listener{
		n:      n,
		addr:   n.addr(name, RPCPort),
		accept: make(chan net.Conn),
		done:   make(chan struct{}),
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		l.once.Do(func() { close(l.done) })
		return l
	}
	if _, ok := n.listeners[name]; ok {
		panic(fmt.Sprintf("chaos: Listen(%q): already listening", name))
	}
	n.listeners[name] = l
	return l
}

// Dialer returns a dial function for endpoint from, suitable for
// grpc.WithContextDialer. addr's host is an endpoint name or fake IP; its port
// is ignored. The dial goes through [Network.Allowed]: a refused dial fails at
// once with an [ErrUnreachable] timeout error, a delayed one waits (bounded by
// ctx). Dialing an endpoint that is not listening fails with "connection
// refused". Once connected, each write is checked again, so a later partition
// makes writes on the connection fail with an ErrUnreachable timeout error;
// after Heal writes succeed again.
func (n *Network) Dialer(from string) func(ctx context.Context, addr string) (net.Conn, error) {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		to := n.endpointOf(addr)
		n.mu.Lock()
		l := n.listeners[to]
		closed := n.closed
		n.mu.Unlock()
		if closed {
			return nil, ErrClosed
		}
		if l == nil {
			return nil, fmt.Errorf("chaos: dial %s from %s: connection refused", addr, from)
		}
		ok, d := n.decide(from, to, 0)
		if !ok {
			return nil, &unreachableError{op: "dial", from: from, to: to}
		}
		if d > 0 {
			if err := sleepCtx(ctx, d, n.done); err != nil {
				return nil, err
			}
		}
		local, remote, err := n.pipe(n.addr(from, 0), l.addr, nil, l)
		if err != nil {
			return nil, err
		}
		select {
		case l.accept <- remote:
			n.postSend(from, to, 0)
			return local, nil
		case <-l.done:
			err = fmt.Errorf("chaos: dial %s from %s: connection refused", addr, from)
		case <-n.done:
			err = ErrClosed
		case <-ctx.Done():
			err = ctx.Err()
		}
		_ = local.Close()
		_ = remote.Close()
		return nil, err
	}
}

func sleepCtx(ctx context.Context, d time.Duration, stop <-chan struct{}) error {
	ctxDone := ctx.Done()
	if !wait(d, ctxDone, stop, nil) {
		if err := ctx.Err(); err != nil {
			return err
		}
		return ErrClosed
	}
	return nil
}

type listener struct {
	n      *Network
	addr   Addr
	accept chan net.Conn
	done   chan struct{}
	once   sync.Once
}

var _ net.Listener = (*listener)(nil)

func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.accept:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *listener) Close() error {
	l.once.Do(func() {
		close(l.done)
		l.n.mu.Lock()
		if l.n.listeners[l.addr.Name] == l {
			delete(l.n.listeners, l.addr.Name)
		}
		l.n.mu.Unlock()
	})
	return nil
}

func (l *listener) Addr() net.Addr { return l.addr }
