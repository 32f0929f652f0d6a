package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParameterised(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"fleet-1", true}, {"fleet-10", true}, {"fleet-50", true},
		{"fleet-0", false}, {"fleet-51", false}, {"fleet-", false}, {"fleet-x", false}, {"fleet", false},
		{"shard-cost-8", true}, {"shard-cost-1024", true},
		{"gossip-2", true}, {"gossip-100", true}, {"gossip-500", true},
		{"gossip-1", false}, {"gossip-501", false}, {"gossip-", false},
		{"shard-cost-0", false}, {"shard-cost-1025", false}, {"shard-cost--1", false}, {"seq3", false},
	} {
		require.Equal(t, tc.ok, parameterised(tc.name) != nil, tc.name)
	}
}

func TestMemberNameSortsByNumber(t *testing.T) {
	require.Equal(t, []string{"n1", "n2", "n3"}, []string{memberName(0, 3), memberName(1, 3), memberName(2, 3)})
	require.Equal(t, []string{"n01", "n09", "n10"}, []string{memberName(0, 10), memberName(8, 10), memberName(9, 10)})
}
