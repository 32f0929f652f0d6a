package gossip

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/mdns"
)

// Advertiser is a Discoverer that also makes this member findable by the
// others, as multicast DNS does. Start calls Advertise once Serf is up and
// calls the returned stop function when the Node stops. An Advertise error
// is logged; the member still runs and discovers through its other sources.
type Advertiser interface {
	Discoverer
	Advertise(self Self) (stop func() error, err error)
}

// Self is what an Advertiser announces about this member.
type Self struct {
	// NodeID is the member's ID.
	NodeID string
	// Addr and Port are its advertised gossip address.
	Addr string
	Port int
	// Logger receives the advertiser's logs.
	Logger *slog.Logger
}

// mdnsQueryTimeout bounds one mDNS browse.
const mdnsQueryTimeout = time.Second

// MDNSDiscoverer finds peers on the local network with multicast DNS (for
// development: one LAN, no configuration) and advertises this member as an
// instance of Service, with its node ID in a TXT record. Peers browses for
// up to a second (less if ctx ends sooner).
type MDNSDiscoverer struct {
	// Service is the DNS-SD service type, such as "_graft._tcp". Every
	// member of one cluster uses the same.
	Service string

	mu   sync.Mutex
	self string
	log  *slog.Logger
}

var _ Advertiser = (*MDNSDiscoverer)(nil)

// MDNS returns an MDNSDiscoverer for service ("_graft._tcp" if empty).
func MDNS(service string) *MDNSDiscoverer {
	if service == "" {
		service = "_graft._tcp"
	}
	return &MDNSDiscoverer{Service: service}
}

// Advertise answers mDNS queries for Service with this member's gossip
// address until stop is called.
func (d *MDNSDiscoverer) Advertise(self Self) (func() error, error) {
	logger := self.Logger
	if logger == nil {
		logger = slog.Default()
	}
	ip := net.ParseIP(self.Addr)
	if ip == nil || ip.IsUnspecified() {
		return nil, fmt.Errorf("mdns: cannot advertise address %q", self.Addr)
	}
	host := strings.NewReplacer(".", "-", "_", "-").Replace(self.NodeID) + ".local."
	svc, err := mdns.NewMDNSService(self.NodeID, d.Service, "", host, self.Port, []net.IP{ip}, []string{"id=" + self.NodeID})
	if err != nil {
		return nil, fmt.Errorf("mdns: describing service %s: %w", d.Service, err)
	}
	srv, err := mdns.NewServer(&mdns.Config{Zone: svc, Logger: newStdLogger(logger)})
	if err != nil {
		return nil, fmt.Errorf("mdns: listening for queries: %w", err)
	}
	d.mu.Lock()
	d.self, d.log = self.NodeID, logger
	d.mu.Unlock()
	return srv.Shutdown, nil
}

// Peers browses for instances of Service and returns their addresses,
// leaving out this member's own.
func (d *MDNSDiscoverer) Peers(ctx context.Context) ([]string, error) {
	d.mu.Lock()
	self, logger := d.self, d.log
	d.mu.Unlock()
	if logger == nil {
		logger = slog.Default()
	}
	timeout := mdnsQueryTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	if timeout <= 0 {
		return nil, ctx.Err()
	}
	entries := make(chan *mdns.ServiceEntry, 64)
	var out []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e := range entries {
			if e.AddrV4 == nil && e.AddrV6 == nil || slices.Contains(e.InfoFields, "id="+self) {
				continue
			}
			addr := e.AddrV4
			if addr == nil {
				addr = e.AddrV6
			}
			out = append(out, joinHostPort(addr.String(), e.Port))
		}
	}()
	err := mdns.Query(&mdns.QueryParam{
		Service: d.Service, Domain: "local", Timeout: timeout, Entries: entries,
		DisableIPv6: true, Logger: newStdLogger(logger),
	})
	close(entries)
	<-done
	if err != nil {
		return nil, fmt.Errorf("mdns discovery %s: %w", d.Service, err)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
