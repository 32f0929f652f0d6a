package hostile

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Send dials addr over TCP, writes b, half-closes the connection and reads
// until the other side closes it or deadline (from the dial) passes. It
// returns how the connection ended: nil when the other side closed it.
func Send(addr string, b []byte, deadline time.Duration) error {
	conn, err := net.DialTimeout("tcp", addr, deadline)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(deadline)); err != nil {
		return err
	}
	if _, err := conn.Write(b); err != nil {
		return err
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	_, err = io.Copy(io.Discard, conn)
	return err
}

// SendUDP sends b to addr in one datagram.
func SendUDP(addr string, b []byte) error {
	conn, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.Write(b)
	return err
}

// Junk opens n TCP connections to addr, workers at a time; connection i
// writes payloads[i%len(payloads)] (nothing when payloads is empty or the
// payload is nil) and closes at once. It returns how many dials failed.
// It returns when every connection is closed on this side.
func Junk(addr string, n, workers int, payloads ...[]byte) (failed int) {
	var next, fails atomic.Int64
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					fails.Add(1)
					continue
				}
				if len(payloads) > 0 {
					if p := payloads[i%int64(len(payloads))]; len(p) > 0 {
						_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
						_, _ = conn.Write(p)
					}
				}
				_ = conn.Close()
			}
		})
	}
	wg.Wait()
	return int(fails.Load())
}
