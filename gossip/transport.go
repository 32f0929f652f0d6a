package gossip

import (
	"errors"
	"fmt"
	"log"
	"os"
	"syscall"

	"github.com/hashicorp/memberlist"
)

// newNetTransport binds memberlist's network transport (TCP and UDP on the
// same port) before Serf is created. serf.Create leaks a goroutine when it
// fails after its internal query relay has started (for example when
// memberlist cannot bind), so everything that can fail is done first.
// BindPort 0 picks a free port, retrying as memberlist does when the UDP
// half of a kernel-chosen TCP port is taken.
func newNetTransport(addr string, port int, logger *log.Logger) (*memberlist.NetTransport, error) {
	nc := &memberlist.NetTransportConfig{BindAddrs: []string{addr}, BindPort: port, Logger: logger}
	tries := 1
	if port == 0 {
		tries = 10
	}
	var err error
	for range tries {
		var nt *memberlist.NetTransport
		if nt, err = memberlist.NewNetTransport(nc); err == nil {
			return nt, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
	}
	return nil, fmt.Errorf("binding gossip port %s: %w", joinHostPort(addr, port), err)
}

// checkSnapshotPath opens the snapshot file the way Serf does, so that an
// unusable path fails before serf.Create (see newNetTransport).
func checkSnapshotPath(path string) error {
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("opening SnapshotPath: %w", err)
	}
	return f.Close()
}
