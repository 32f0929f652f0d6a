package rpc

import (
	"log/slog"
	"net"
	"sync"
)

// limitListener closes connections accepted while max are open, so that
// junk connections cannot pile up (each costs gRPC read and write buffers).
type limitListener struct {
	net.Listener
	slots chan struct{}
	log   *slog.Logger
}

func newLimitListener(l net.Listener, max int, log *slog.Logger) *limitListener {
	return &limitListener{Listener: l, slots: make(chan struct{}, max), log: log}
}

// Accept returns the next connection while fewer than max are open,
// closing those accepted over it.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &limitConn{Conn: c, release: sync.OnceFunc(func() { <-l.slots })}, nil
		default:
			l.log.Debug("member rpc connection refused: too many open", "remote", c.RemoteAddr().String(), "max", cap(l.slots))
			_ = c.Close()
		}
	}
}

// limitConn frees its listener slot when closed.
type limitConn struct {
	net.Conn
	release func()
}

// Close closes the connection and frees its slot.
func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}
