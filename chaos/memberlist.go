package chaos

import (
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// MemberlistPort is the cosmetic port every memberlist endpoint advertises.
// Routing ignores ports: the fake IP (or name) identifies the endpoint.
const MemberlistPort = 7946

// packetQueueLen bounds the packets waiting for a memberlist to read them;
// beyond it packets are lost, as UDP would lose them.
const packetQueueLen = 1024

// MemberlistTransport returns a memberlist transport for endpoint name, modelled
// on memberlist's MockTransport: packets travel over channels, streams over
// net.Pipe pairs. Set it as memberlist.Config.Transport.
//
// The transport advertises the endpoint's fake IP ([Network.IP]) and
// [MemberlistPort], whatever AdvertiseAddr/AdvertisePort say, so join other
// members with [Network.MemberlistAddr] (memberlist resolves a non-IP host
// through DNS). Outgoing addresses may be "ip:port", "name:port" or carry the
// node name in memberlist.Address.Name.
//
// Every packet and every new stream goes through [Network.Allowed]: a refused
// packet vanishes silently (WriteTo still succeeds, like UDP), a refused dial
// fails with an [ErrUnreachable] timeout error, and writes on established
// streams across a cut fail the same way. A packet to an unknown or shut down
// endpoint is lost; a dial to one fails.
//
// Calling MemberlistTransport again for the same name (a restarted member)
// routes traffic to the new transport from then on. Shutdown closes the streams
// this transport opened or accepted, as a process exit would; it is idempotent.
func (n *Network) MemberlistTransport(name string) memberlist.NodeAwareTransport {
	t := &memberlistTransport{
		n:        n,
		addr:     n.addr(name, MemberlistPort),
		packetCh: make(chan *memberlist.Packet, packetQueueLen),
		streamCh: make(chan net.Conn),
		done:     make(chan struct{}),
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		t.once.Do(func() { close(t.done) })
		return t
	}
	n.gossip[name] = t
	return t
}

// MemberlistAddr returns the address other memberlists use to join endpoint
// name: its fake IP and [MemberlistPort], e.g. "127.100.0.1:7946".
func (n *Network) MemberlistAddr(name string) string {
	return n.addr(name, MemberlistPort).String()
}

type memberlistTransport struct {
	n        *Network
	addr     Addr
	packetCh chan *memberlist.Packet
	streamCh chan net.Conn
	done     chan struct{}
	once     sync.Once
}

var _ memberlist.NodeAwareTransport = (*memberlistTransport)(nil)

// FinalAdvertiseAddr returns the endpoint's fake IP and MemberlistPort.
func (t *memberlistTransport) FinalAdvertiseAddr(string, int) (net.IP, int, error) {
	return t.addr.IP, t.addr.Port, nil
}

func (t *memberlistTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

func (t *memberlistTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	now := time.Now()
	if t.isShutdown() {
		return now, ErrClosed
	}
	dest := t.n.gossipPeer(a)
	if dest == nil {
		return now, nil // nobody listens there: the datagram is lost
	}
	from, to := t.addr.Name, dest.addr.Name
	ok, d := t.n.decide(from, to, len(b))
	if !ok {
		return now, nil
	}
	buf := append([]byte(nil), b...)
	deliver := func() {
		select {
		case dest.packetCh <- &memberlist.Packet{Buf: buf, From: t.addr, Timestamp: time.Now()}:
			t.n.postSend(from, to, len(buf))
		case <-dest.done:
		default: // receive queue full: lost
		}
	}
	if d > 0 {
		t.n.after(d, deliver)
	} else {
		deliver()
	}
	return now, nil
}

func (t *memberlistTransport) PacketCh() <-chan *memberlist.Packet { return t.packetCh }

func (t *memberlistTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

func (t *memberlistTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if t.isShutdown() {
		return nil, ErrClosed
	}
	dest := t.n.gossipPeer(a)
	if dest == nil {
		return nil, fmt.Errorf("chaos: dial %s from %s: connection refused", a.String(), t.addr.Name)
	}
	from, to := t.addr.Name, dest.addr.Name
	ok, d := t.n.decide(from, to, 0)
	if !ok {
		return nil, &unreachableError{op: "dial", from: from, to: to}
	}
	if timeout <= 0 {
		timeout = time.Minute
	}
	if d >= timeout {
		if wait(timeout, t.done, t.n.done, nil) {
			return nil, &unreachableError{op: "dial", from: from, to: to}
		}
		return nil, ErrClosed
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	if !wait(d, t.done, t.n.done, nil) {
		return nil, ErrClosed
	}
	local, remote, err := t.n.pipe(t.addr, dest.addr, t, dest)
	if err != nil {
		return nil, err
	}
	select {
	case dest.streamCh <- remote:
		t.n.postSend(from, to, 0)
		return local, nil
	case <-dest.done:
		err = fmt.Errorf("chaos: dial %s from %s: connection refused", to, from)
	case <-t.done:
		err = ErrClosed
	case <-t.n.done:
		err = ErrClosed
	case <-deadline.C:
		err = &unreachableError{op: "dial", from: from, to: to}
	}
	_ = local.Close()
	_ = remote.Close()
	return nil, err
}

func (t *memberlistTransport) StreamCh() <-chan net.Conn { return t.streamCh }

// Shutdown stops the transport and closes its streams; it is idempotent.
func (t *memberlistTransport) Shutdown() error {
	t.once.Do(func() {
		close(t.done)
		t.n.mu.Lock()
		if t.n.gossip[t.addr.Name] == t {
			delete(t.n.gossip, t.addr.Name)
		}
		t.n.mu.Unlock()
		t.n.closeOwnedBy(t)
	})
	return nil
}

func (t *memberlistTransport) isShutdown() bool {
	select {
	case <-t.done:
		return true
	default:
		return false
	}
}

// gossipPeer resolves a memberlist address to a live transport, or nil. The
// address decides; Address.Name (memberlist's node name, which need not be
// the endpoint name) is only a fallback.
func (n *Network) gossipPeer(a memberlist.Address) *memberlistTransport {
	n.mu.Lock()
	defer n.mu.Unlock()
	if a.Addr != "" {
		if t, ok := n.gossip[n.endpointOfLocked(a.Addr)]; ok {
			return t
		}
	}
	if a.Name != "" {
		return n.gossip[a.Name]
	}
	return nil
}
