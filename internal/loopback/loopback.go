// Package loopback hands out free loopback addresses for the members that
// tests, benchmarks and demos start on one machine. It imports only the
// standard library.
package loopback

import (
	"errors"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
)

// Ports hands out loopback ports that nothing listened on (TCP or UDP:
// gossip uses both) a moment ago, never the same one twice. It picks them
// below the kernel's ephemeral range (32768 and up on Linux), which the
// members' own outgoing connections draw from: a port freed from that
// range could be taken by such a connection before the member binds it.
// The zero value is ready; it is safe for concurrent use. Keep one per
// process (a package variable in a test package) so that two tests never
// get the same port.
type Ports struct {
	handedOut sync.Map // port -> true
}

// Addr returns a free loopback host:port.
func (p *Ports) Addr() (string, error) {
	for range 1000 {
		port := 10000 + rand.IntN(22000)
		if _, taken := p.handedOut.LoadOrStore(port, true); taken {
			continue
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		u, err := net.ListenPacket("udp", addr)
		_ = l.Close()
		if err != nil {
			continue
		}
		_ = u.Close()
		return addr, nil
	}
	return "", errors.New("no free loopback port found in 1000 tries")
}

// Port returns a free loopback port.
func (p *Ports) Port() (int, error) {
	addr, err := p.Addr()
	if err != nil {
		return 0, err
	}
	_, port, _ := net.SplitHostPort(addr)
	return strconv.Atoi(port)
}
