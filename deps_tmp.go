package graft

import (
	_ "github.com/lni/dragonboat/v4"
	_ "github.com/cockroachdb/pebble"
	_ "github.com/hashicorp/serf/serf"
	_ "github.com/hashicorp/memberlist"
	_ "github.com/buraksezer/consistent"
	_ "github.com/prometheus/client_golang/prometheus"
)

