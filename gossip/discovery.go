package gossip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
)

// Discoverer is a source of peer addresses to join. Peers returns gossip
// addresses as "host:port"; host may be an IP or a DNS name. It may be
// called concurrently and should honour ctx.
type Discoverer interface {
	Peers(ctx context.Context) ([]string, error)
}

// Static returns a Discoverer that always returns addrs ("host:port").
func Static(addrs ...string) Discoverer { return staticDiscoverer(slices.Clone(addrs)) }

type staticDiscoverer []string

func (s staticDiscoverer) Peers(context.Context) ([]string, error) { return slices.Clone(s), nil }

// Resolver is the part of *net.Resolver the DNS discoverer uses. Tests
// inject a fake.
type Resolver interface {
	LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

var _ Resolver = (*net.Resolver)(nil)

// DNSDiscoverer finds peers through DNS, as a Kubernetes headless service
// publishes them. If Name has SRV records, each target:port is a peer;
// otherwise every A/AAAA record of Name is a peer on Port.
type DNSDiscoverer struct {
	// Name is the DNS name to look up, e.g.
	// "graft.default.svc.cluster.local" or
	// "_gossip._tcp.graft.default.svc.cluster.local".
	Name string
	// Port is the gossip port used with A/AAAA records.
	Port int
	// Resolver does the lookups. Nil means net.DefaultResolver.
	Resolver Resolver
}

// DNS returns a DNSDiscoverer for name using net.DefaultResolver.
func DNS(name string, port int) Discoverer { return &DNSDiscoverer{Name: name, Port: port} }

// Peers implements Discoverer.
func (d *DNSDiscoverer) Peers(ctx context.Context) ([]string, error) {
	r := d.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	// An SRV lookup with empty service and proto queries Name directly.
	_, srvs, srvErr := r.LookupSRV(ctx, "", "", d.Name)
	if srvErr == nil && len(srvs) > 0 {
		out := make([]string, 0, len(srvs))
		for _, s := range srvs {
			out = append(out, joinHostPort(strings.TrimSuffix(s.Target, "."), int(s.Port)))
		}
		slices.Sort(out)
		return slices.Compact(out), nil
	}
	if d.Port <= 0 || d.Port > 65535 {
		return nil, fmt.Errorf("dns discovery %s: no SRV records and port %d is invalid", d.Name, d.Port)
	}
	ips, err := r.LookupIPAddr(ctx, d.Name)
	if err != nil {
		return nil, fmt.Errorf("dns discovery %s: %w", d.Name, errors.Join(err, srvErr))
	}
	out := make([]string, 0, len(ips))
	for _, ip := range ips {
		out = append(out, joinHostPort(ip.IP.String(), d.Port))
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func joinHostPort(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}
