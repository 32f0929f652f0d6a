package loopback

import (
	"net"
	"testing"
)

// Ports hands out distinct ports below the ephemeral range that can be
// bound for TCP and UDP, and never one that is in use.
func TestPortsAreFreeAndDistinct(t *testing.T) {
	t.Parallel()
	var p Ports
	seen := map[string]bool{}
	for range 50 {
		addr, err := p.Addr()
		if err != nil {
			t.Fatal(err)
		}
		if seen[addr] {
			t.Fatalf("%s handed out twice", addr)
		}
		seen[addr] = true
		port, err := net.ResolveTCPAddr("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if port.Port < 10000 || port.Port >= 32000 {
			t.Fatalf("%s is outside 10000-31999", addr)
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("%s cannot be bound: %v", addr, err)
		}
		_ = l.Close()
	}
	n, err := p.Port()
	if err != nil || n < 10000 {
		t.Fatalf("Port() = %d, %v", n, err)
	}
}
