package gossip

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

type fakeResolver struct {
	srv    map[string][]*net.SRV
	ips    map[string][]net.IPAddr
	srvErr error
}

func (f *fakeResolver) LookupSRV(_ context.Context, service, proto, name string) (string, []*net.SRV, error) {
	if service != "" || proto != "" {
		return "", nil, errors.New("unexpected service/proto")
	}
	if f.srvErr != nil {
		return "", nil, f.srvErr
	}
	if s, ok := f.srv[name]; ok {
		return name, s, nil
	}
	return "", nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func (f *fakeResolver) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	if ips, ok := f.ips[host]; ok {
		return ips, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func TestDNSDiscoverer(t *testing.T) {
	t.Parallel()
	r := &fakeResolver{
		srv: map[string][]*net.SRV{
			"_gossip._tcp.graft.svc": {
				{Target: "graft-1.graft.svc.", Port: 7946},
				{Target: "graft-0.graft.svc.", Port: 7947},
				{Target: "graft-0.graft.svc.", Port: 7947},
			},
		},
		ips: map[string][]net.IPAddr{
			"graft.svc": {{IP: net.ParseIP("10.0.0.2")}, {IP: net.ParseIP("10.0.0.1")}, {IP: net.ParseIP("fd00::1")}},
		},
	}
	tests := []struct {
		name    string
		d       *DNSDiscoverer
		want    []string
		wantErr string
	}{
		{"srv records win", &DNSDiscoverer{Name: "_gossip._tcp.graft.svc", Port: 1, Resolver: r},
			[]string{"graft-0.graft.svc:7947", "graft-1.graft.svc:7946"}, ""},
		{"a/aaaa records with port", &DNSDiscoverer{Name: "graft.svc", Port: 7946, Resolver: r},
			[]string{"10.0.0.1:7946", "10.0.0.2:7946", "[fd00::1]:7946"}, ""},
		{"nothing", &DNSDiscoverer{Name: "missing.svc", Port: 7946, Resolver: r}, nil, "dns discovery missing.svc"},
		{"no srv and no port", &DNSDiscoverer{Name: "graft.svc", Resolver: r}, nil, "port 0 is invalid"},
		{"srv error falls back to a", &DNSDiscoverer{Name: "graft.svc", Port: 1, Resolver: &fakeResolver{srvErr: errors.New("boom"), ips: r.ips}},
			[]string{"10.0.0.1:1", "10.0.0.2:1", "[fd00::1]:1"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.d.Peers(context.Background())
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
	require.IsType(t, &DNSDiscoverer{}, DNS("x", 1))
}

func TestStatic(t *testing.T) {
	t.Parallel()
	addrs := []string{"10.0.0.1:7946"}
	d := Static(addrs...)
	addrs[0] = "changed"
	got, err := d.Peers(context.Background())
	require.NoError(t, err)
	require.Equal(t, []string{"10.0.0.1:7946"}, got)
}

func TestNormalizeAddr(t *testing.T) {
	t.Parallel()
	require.Equal(t, "[fd00::1]:1", normalizeAddr("[fd00:0::1]:1"))
	require.Equal(t, "host:1", normalizeAddr("host:1"))
	require.Equal(t, "bad", normalizeAddr("bad"))
}
