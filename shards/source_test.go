package shards

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSourceMustBeTheConnectionsHost(t *testing.T) {
	t.Parallel()
	var s sourceIPs
	tests := []struct {
		peer, source string
		ok           bool
	}{
		{"10.0.0.2", "10.0.0.2:7000", true},
		{"10.0.0.9", "10.0.0.2:7000", false},
		{"127.0.0.1", "127.0.0.2:7000", true}, // loopback is one host
		{"127.0.0.1", "localhost:7000", true},
		{"10.0.0.9", "localhost:7000", false},
		{"::1", "[::1]:7000", true},
		{"10.0.0.2", "not-an-address", true}, // left to the inbound filter
		{"10.0.0.2", "no-such-host.invalid:7000", false},
	}
	for _, tt := range tests {
		err := s.check(tt.peer, tt.source)
		if tt.ok {
			require.NoError(t, err, "%s from %s", tt.source, tt.peer)
		} else {
			require.Error(t, err, "%s from %s", tt.source, tt.peer)
		}
	}
}
