package gossip

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/eleven-am/graft/internal/hostile"
	"github.com/eleven-am/graft/internal/testlog"
	"github.com/stretchr/testify/require"
)

type memStats struct{ heapInuse, sys uint64 }

func readMem() memStats {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memStats{heapInuse: ms.HeapInuse, sys: ms.Sys}
}

// TestHostileInput sends one member's gossip port (TCP and UDP) what a
// hostile neighbour would (internal/hostile's gossip probes), then checks
// that the member still works, did not keep the memory it was made to
// allocate, and did not leak goroutines. Not parallel, so that the memory
// and goroutine counts are this test's.
func TestHostileInput(t *testing.T) {
	// The victim logs to t.Log, except while the junk connections arrive.
	logs := testlog.New(t, "[victim] ")
	cfg := testConfig(t, "victim")
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	victim := startNode(t, cfg)
	victim.OnQuery(func(name string, payload []byte, from string) ([]byte, error) {
		return []byte("pong"), nil
	})
	addr := addrOf(t, victim)
	before := readMem()
	goroutines := runtime.NumGoroutine()
	t.Logf("baseline: HeapInuse %d KiB, Sys %d KiB, %d goroutines", before.heapInuse>>10, before.sys>>10, goroutines)

	seed := uint64(time.Now().UnixNano())
	t.Logf("random seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))

	for _, p := range hostile.GossipStreamProbes(rng) {
		err := hostile.Send(addr, p.Bytes, 5*time.Second)
		t.Logf("TCP probe %q (%d bytes): connection ended with %v", p.Name, len(p.Bytes), err)
	}
	udpProbes := hostile.GossipPacketProbes(rng)
	for _, p := range udpProbes {
		require.NoError(t, hostile.SendUDP(addr, p.Bytes), p.Name)
	}
	t.Logf("sent %d UDP probes", len(udpProbes))

	// 5,000 junk connections, 50 at a time: some send nothing, some a few
	// random bytes, some half a header.
	logs.Mute(true)
	const junk = 5000
	failedDials := hostile.Junk(addr, junk, 50, nil, hostile.RandomBytes(rng, 1+rng.IntN(64)), hostile.GossipJoinHeader()[:3])
	logs.Mute(false)
	t.Logf("%d junk connections, %d dials failed", junk, failedDials)

	// The member still works: a new member joins it and both see each other,
	// user events and queries go through.
	joiner := startNode(t, testConfig(t, "joiner", addr))
	waitMembers(t, []*Node{victim, joiner}, []string{"joiner", "victim"})
	var got userLog
	victim.OnUserEvent(got.handler)
	require.NoError(t, joiner.Broadcast("still-there", []byte("yes")))
	require.Eventually(t, func() bool { return got.has("still-there|yes|joiner") }, waitFor, 10*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	replies, err := joiner.Query(ctx, "ping", nil)
	require.NoError(t, err)
	require.Equal(t, "pong", string(replies["victim"].Payload))

	// Goroutines return to the baseline (plus the joiner's) once the node
	// has closed the junk connections (memberlist's TCPTimeout, 500ms here).
	require.NoError(t, joiner.Stop())
	var now int
	require.Eventually(t, func() bool {
		now = runtime.NumGoroutine()
		return now <= goroutines+5
	}, waitFor, 20*time.Millisecond, "goroutines stayed above the baseline of %d", goroutines)
	t.Logf("goroutines: %d before, %d after", goroutines, now)

	after := readMem()
	t.Logf("HeapInuse %d KiB -> %d KiB, Sys %d KiB -> %d KiB",
		before.heapInuse>>10, after.heapInuse>>10, before.sys>>10, after.sys>>10)
	require.LessOrEqual(t, after.heapInuse, 2*before.heapInuse+16<<20, "heap kept what the probes made it allocate")
	// Without the guard, memberlist's 40 MiB decompression limit let Sys
	// reach ~340 MiB here; a 1 GiB inflation would show as more than 1 GiB.
	require.LessOrEqual(t, after.sys, 2*before.sys+128<<20, "the member inflated a bomb")
	require.NoError(t, victim.Stop())
}
