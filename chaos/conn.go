package chaos

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
)

// ErrUnreachable is wrapped by every error that reports a send or dial refused
// by the Network (a cut link, a Drop rule or a PreSend hook). Such errors are
// net.Errors whose Timeout() is true, like a real connection that stopped
// getting through.
var ErrUnreachable = errors.New("chaos: unreachable")

// ErrClosed is returned by operations on a closed Network, transport, listener
// or connection.
var ErrClosed = errors.New("chaos: closed")

type unreachableError struct {
	op, from, to string
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("chaos: %s %s -> %s: unreachable (i/o timeout)", e.op, e.from, e.to)
}
func (e *unreachableError) Unwrap() error   { return ErrUnreachable }
func (e *unreachableError) Timeout() bool   { return true }
func (e *unreachableError) Temporary() bool { return true }

var _ net.Error = (*unreachableError)(nil)

// Addr is the net.Addr of an endpoint on a Network. Its String form is the
// endpoint's fake IP and a cosmetic port ("127.100.0.1:7946"), which every
// transport of the Network resolves back to the endpoint.
type Addr struct {
	Name string // endpoint name, e.g. "n1"
	IP   net.IP // the endpoint's fake IP, see [Network.IP]
	Port int    // cosmetic; routing ignores it
}

var _ net.Addr = Addr{}

// Network returns "chaos".
func (a Addr) Network() string { return "chaos" }

// String returns "ip:port".
func (a Addr) String() string { return net.JoinHostPort(a.IP.String(), strconv.Itoa(a.Port)) }

// faultConn is one end of a net.Pipe whose writes go through the Network's
// decision point, so a partition also breaks established streams: a write
// across a cut (or one hit by a Drop rule) fails with an unreachableError and
// writes nothing.
type faultConn struct {
	net.Conn
	n             *Network
	owner         any // the transport or listener that created this end
	local, remote Addr
	closed        chan struct{}
	closeOnce     sync.Once
}

// pipe returns two connected ends, one at endpoint a and one at b, and
// registers them with the Network. It fails if the Network is closed.
func (n *Network) pipe(a, b Addr, aOwner, bOwner any) (*faultConn, *faultConn, error) {
	p1, p2 := net.Pipe()
	ca := &faultConn{Conn: p1, n: n, owner: aOwner, local: a, remote: b, closed: make(chan struct{})}
	cb := &faultConn{Conn: p2, n: n, owner: bOwner, local: b, remote: a, closed: make(chan struct{})}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		_ = p1.Close()
		_ = p2.Close()
		return nil, nil, ErrClosed
	}
	n.conns[ca] = struct{}{}
	n.conns[cb] = struct{}{}
	return ca, cb, nil
}

// addr returns the Addr of endpoint name with the given cosmetic port.
func (n *Network) addr(name string, port int) Addr {
	return Addr{Name: name, IP: n.IP(name), Port: port}
}

// closeOwnedBy closes every connection end created for owner.
func (n *Network) closeOwnedBy(owner any) {
	n.mu.Lock()
	var cs []*faultConn
	for c := range n.conns {
		if c.owner == owner {
			cs = append(cs, c)
		}
	}
	n.mu.Unlock()
	for _, c := range cs {
		_ = c.Close()
	}
}

func (c *faultConn) Write(b []byte) (int, error) {
	ok, d := c.n.decide(c.local.Name, c.remote.Name, len(b))
	if !ok {
		return 0, &unreachableError{op: "write", from: c.local.Name, to: c.remote.Name}
	}
	if !wait(d, c.closed, c.n.done, nil) {
		return 0, net.ErrClosed
	}
	nw, err := c.Conn.Write(b)
	if nw > 0 {
		c.n.postSend(c.local.Name, c.remote.Name, nw)
	}
	return nw, err
}

func (c *faultConn) Close() error {
	c.closeOnce.Do(func() {
		close(c.closed)
		c.n.mu.Lock()
		delete(c.n.conns, c)
		c.n.mu.Unlock()
	})
	return c.Conn.Close()
}

func (c *faultConn) LocalAddr() net.Addr  { return c.local }
func (c *faultConn) RemoteAddr() net.Addr { return c.remote }
