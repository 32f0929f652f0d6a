package graft

import (
	"testing"

	"github.com/eleven-am/graft/internal/formation"
	"github.com/stretchr/testify/require"
)

func TestFoundingRules(t *testing.T) {
	t.Parallel()
	static := func(peers ...StaticPeer) []DiscoveryConfig {
		return []DiscoveryConfig{{Type: DiscoveryStatic, Static: peers}}
	}
	p := func(id, addr string) StaticPeer { return StaticPeer{ID: id, Address: addr, Port: 7000} }
	tests := []struct {
		name string
		cfg  Config
		want formation.Rules
	}{
		{"the spec's static list", Config{NodeID: "node-1", BindAddr: "10.0.0.1:7000",
			Discovery: static(p("node-1", "10.0.0.1"), p("node-2", "10.0.0.2"), p("node-3", "10.0.0.3"))},
			formation.Rules{Mode: formation.Listed, IDs: []string{"node-1", "node-2", "node-3"}}},
		{"this member counts though not listed", Config{NodeID: "node-4", BindAddr: "10.0.0.4:7000",
			Discovery: static(p("node-2", "10.0.0.2"), p("node-1", "10.0.0.1"))},
			formation.Rules{Mode: formation.Listed, IDs: []string{"node-1", "node-2", "node-4"}}},
		{"a list of only itself", Config{NodeID: "node-1", BindAddr: "10.0.0.1:7000", Discovery: static(p("node-1", "10.0.0.1"))},
			formation.Rules{Mode: formation.Listed, IDs: []string{"node-1"}}},
		{"peers without IDs count by address, this one's skipped", Config{NodeID: "node-1", BindAddr: "10.0.0.1:7000",
			Discovery: static(p("", "10.0.0.1"), p("", "10.0.0.2"), p("", "10.0.0.3"), p("", "10.0.0.3"))},
			formation.Rules{Mode: formation.Count, Want: 3}},
		{"ExpectedMembers overrides the list", Config{NodeID: "node-1", BindAddr: "10.0.0.1:7000",
			Discovery: static(p("node-1", "10.0.0.1")), Cluster: ClusterConfig{ExpectedMembers: 2}},
			formation.Rules{Mode: formation.Count, Want: 2}},
		{"mDNS only elects", Config{NodeID: "node-1", BindAddr: "10.0.0.1:7000", Discovery: []DiscoveryConfig{{Type: DiscoveryMDNS}}},
			formation.Rules{Mode: formation.Elect}},
		{"DNS only elects", Config{NodeID: "node-1", BindAddr: "10.0.0.1:7000", Discovery: []DiscoveryConfig{{Type: DiscoveryDNS, Service: "graft.svc"}}},
			formation.Rules{Mode: formation.Elect}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.True(t, tt.cfg.clustered())
			require.Equal(t, tt.want, tt.cfg.foundingRules())
		})
	}
	require.False(t, (&Config{NodeID: "n1"}).clustered(), "no discovery: a lone member")
	require.True(t, (&Config{NodeID: "n1", Cluster: ClusterConfig{ExpectedMembers: 2}}).clustered())
}
