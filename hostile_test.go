package graft_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eleven-am/graft"
	"github.com/eleven-am/graft/internal/hostile"
	"github.com/eleven-am/graft/internal/rpc"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Memory bounds of TestHostileInputToEveryPort. After the probes and a
// collection, the process's RSS (all three members, the load and the
// attacker share it) must be at most twice its baseline plus rssSlack, and
// the live heap at most twice its baseline plus heapSlack.
//
// rssSlack covers heap the Go runtime took for transient peaks and returns
// to the OS only lazily (its scavenger): refusing a gossip bomb allocates
// up to ~40 MiB on the way to the 8 MiB inflation limit, and a burst of
// RPC calls briefly holds their buffers. Without the race detector the RSS
// measured here went from about 40 MiB to 50–70 MiB (peak 80–120 MiB).
// Under the race detector, RSS also holds the detector's shadow memory of
// every heap page ever touched, several times the heap and never returned,
// so the same run went from about 125 MiB to 455–490 MiB: rssSlackRace
// allows for that. Either bound is far below what one inflated bomb would
// take (1 GiB over gossip, 48 × 15 MiB over the member RPC).
const (
	rssSlack     = 64 << 20
	rssSlackRace = 512 << 20
	heapSlack    = 16 << 20
)

// hostileGoroutineMargin is how many goroutines over the baseline the
// cluster may still run once the probes are over: the members' own
// background work (Raft, gossip, the load's steps) varies by that much.
const hostileGoroutineMargin = 25

// memFigures are the process's memory figures after a collection.
type memFigures struct {
	rss, peak uint64 // VmRSS and VmHWM from /proc/self/status
	heap      uint64 // live heap (HeapInuse)
}

func (f memFigures) String() string {
	return fmt.Sprintf("RSS %d MiB (peak %d MiB), heap in use %d MiB", f.rss>>20, f.peak>>20, f.heap>>20)
}

// settledMem collects garbage and reads the process's memory figures.
func settledMem(t *testing.T) memFigures {
	t.Helper()
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	f := memFigures{heap: ms.HeapInuse}
	b, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		kb, err := strconv.ParseUint(fields[1], 10, 64)
		if err != nil {
			continue
		}
		switch fields[0] {
		case "VmRSS:":
			f.rss = kb << 10
		case "VmHWM:":
			f.peak = kb << 10
		}
	}
	require.NotZero(t, f.rss, "no VmRSS in /proc/self/status")
	return f
}

// A loaded three-member cluster on loopback (plaintext, the default
// config) is sent every hostile probe of internal/hostile on each of the
// three ports of member n1 — gossip (TCP and UDP), Raft and member RPC —
// together with random bytes, truncated frames, a replayed heartbeat from
// a member of another cluster and junk connections. Every member stays up
// and sees the other two, the process's RSS stays within twice its
// baseline (plus rssSlack), the goroutines come back near their baseline,
// every acknowledged workflow of the load completes as seen from every
// member, and a workflow started afterwards completes.
func TestHostileInputToEveryPort(t *testing.T) {
	longScenario(t)
	began := time.Now()
	addrs := newMemberAddrs(t, "n1", "n2", "n3")
	peers := staticPeers(addrs...)
	var cfgs []*graft.Config
	for _, a := range addrs {
		cfgs = append(cfgs, memberConfig(t, a, 3, peers, nil))
	}
	var runs atomic.Int64
	members, rpcPorts := startOnRPCPorts(t, cfgs, seqNodes(t, &runs))
	requireAllSee(t, members, 2)
	startSeq(t, members[0].m, "warm-up")
	for _, cm := range members {
		waitDone(t, cm.m, "warm-up")
	}

	stop := load(t, "hostile", func() []*clusterMember { return members }).stop
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			stop()
		}
	})
	base := settledMem(t)
	baseG := runtime.NumGoroutine()
	t.Logf("baseline under load: %s, %d goroutines", base, baseG)
	probing := time.Now()

	n1 := members[0].cfg
	raftAddr := n1.BindAddr
	gossipAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(n1.Cluster.GossipPort))
	rpcAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(rpcPorts[0]))
	n2Raft := members[1].cfg.BindAddr
	// The Raft address of a member of another cluster: nothing in this one.
	stranger := freeAddr(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("random seed %d; n1: Raft %s, gossip %s, RPC %s; other cluster's member %s", seed, raftAddr, gossipAddr, rpcAddr, stranger)
	rng := rand.New(rand.NewPCG(seed, seed))

	const sendDeadline = 5 * time.Second
	sent := map[string]int{}
	sendTCP := func(port, addr string, probes []hostile.Probe) {
		for _, p := range probes {
			_ = hostile.Send(addr, p.Bytes, sendDeadline) // how the member closes does not matter
		}
		sent[port] += len(probes)
	}

	// Gossip, TCP: the stream probes (push/pull headers with Nodes=-1 and
	// huge counts, a compressed message inflating to 1 GiB, …), a join
	// cut at every length, random bytes.
	join := hostile.Probe{Name: "join", Bytes: hostile.GossipMessage(hostile.GossipPushPull,
		hostile.PushPullHeader{Nodes: 1, Join: true},
		hostile.PushNodeState{Name: "n9", Addr: net.IPv4(127, 0, 0, 1).To4(), Port: 1, Vsn: []uint8{1, 5, 2, 2, 5, 4}})}
	sendTCP("gossip/tcp", gossipAddr, hostile.GossipStreamProbes(rng))
	sendTCP("gossip/tcp", gossipAddr, hostile.Truncations(join, 60))
	sendTCP("gossip/tcp", gossipAddr, hostile.RandomProbes(rng, "random", 100, 2048, nil))

	// Gossip, UDP: the packet probes (a 143 MiB bomb, bad fields, 200
	// random packets) and an alive message cut at every length.
	alive := hostile.Probe{Name: "alive", Bytes: hostile.GossipMessage(hostile.GossipAlive,
		hostile.AliveMsg{Incarnation: 1, Node: "n9", Addr: net.IPv4(127, 0, 0, 1).To4(), Port: 1, Vsn: []uint8{1, 5, 2, 2, 5, 4}})}
	packets := append(hostile.GossipPacketProbes(rng), hostile.Truncations(alive, 60)...)
	for _, p := range packets {
		require.NoError(t, hostile.SendUDP(gossipAddr, p.Bytes), p.Name)
	}
	sent["gossip/udp"] += len(packets)

	// Raft: batches with To=0, SourceAddress "not-an-address", shard 1
	// replica 2 from an unknown address, a header declaring 1 TiB, …; a
	// heartbeat replayed from a member of another cluster; a valid
	// heartbeat from n2's address cut at every length; random bytes
	// before and after the magic number.
	replayed := hostile.RaftHeartbeat()
	replayed.Term, replayed.Commit = 7, 1<<20 // another cluster's term and commit index
	sendTCP("raft", raftAddr, hostile.RaftProbes(rng, stranger))
	sendTCP("raft", raftAddr, []hostile.Probe{{Name: "heartbeat replayed from another cluster", Bytes: hostile.RaftBatch(stranger, replayed)}})
	sendTCP("raft", raftAddr, hostile.Truncations(hostile.Probe{Name: "heartbeat", Bytes: hostile.RaftBatch(n2Raft, hostile.RaftHeartbeat())}, 100))
	sendTCP("raft", raftAddr, hostile.RandomProbes(rng, "random", 100, 99, nil))
	sendTCP("raft", raftAddr, hostile.RandomProbes(rng, "random after magic", 100, 97, []byte(hostile.RaftMagic)))

	// Member RPC, raw bytes: random bytes, the HTTP/2 preface and garbage,
	// frames announcing 16 MiB, the preface cut at every length.
	sendTCP("rpc", rpcAddr, hostile.RPCProbes(rng))
	sendTCP("rpc", rpcAddr, hostile.Truncations(hostile.Probe{Name: "preface", Bytes: []byte(hostile.HTTP2Preface)}, 30))
	sendTCP("rpc", rpcAddr, hostile.RandomProbes(rng, "random", 50, 2048, nil))

	// Member RPC, calls: 48 concurrent calls announcing (and sending) 15
	// MiB each are refused as too large from their first message.
	big := hostile.RPCRequest("membership", bytes.Repeat([]byte{'x'}, 15<<20))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bigErrs := make([]error, 48)
	var wg sync.WaitGroup
	for i := range bigErrs {
		wg.Go(func() { bigErrs[i] = hostile.RPCCall(ctx, rpcAddr, uint64(len(big)), big) })
	}
	wg.Wait()
	for _, err := range bigErrs {
		require.Error(t, err)
		require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
		re, ok := rpc.DecodeStatus(status.Convert(err))
		require.True(t, ok, "%v", err)
		require.Equal(t, rpc.CodeTooLarge, re.Code, "%v", err)
	}
	sent["rpc"] += len(bigErrs)

	// Member RPC, a burst of well-formed calls from 127.0.0.1 (a member's
	// address, so they pass the caller check): served or refused as busy,
	// never left unanswered.
	client, err := rpc.NewClient(nil, rpc.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, client.Close()) })
	const burst, callers = 300, 30
	var served, refused atomic.Int64
	var unreachable sync.Map
	for range callers {
		wg.Go(func() {
			for range burst / callers {
				_, err := client.Call(ctx, rpcAddr, "membership", []byte(`{"shard":1}`))
				var re *rpc.RemoteError
				switch {
				case err == nil:
					served.Add(1)
				case errors.As(err, &re):
					refused.Add(1)
				default:
					unreachable.Store(err.Error(), true)
				}
			}
		})
	}
	wg.Wait()
	unreachable.Range(func(k, _ any) bool {
		t.Errorf("a call of the burst went unanswered: %v", k)
		return true
	})
	sent["rpc"] += burst
	require.NoError(t, client.Close())
	t.Logf("burst of %d calls: %d served, %d refused by the member", burst, served.Load(), refused.Load())

	// Junk connections, 5,000 to the Raft port and 2,000 to each other TCP
	// port: nothing, a few bytes, part of a header.
	const raftJunk, junk, workers = 5000, 2000, 16
	failed := hostile.Junk(gossipAddr, junk, workers, nil, hostile.RandomBytes(rng, 17), hostile.GossipJoinHeader()[:3])
	failed += hostile.Junk(raftAddr, raftJunk, workers, hostile.RaftJunk()...)
	failed += hostile.Junk(rpcAddr, junk, workers, nil, []byte(hostile.HTTP2Preface), hostile.RandomBytes(rng, 40))
	sent["gossip/tcp"] += junk
	sent["raft"] += raftJunk
	sent["rpc"] += junk
	t.Logf("probes sent per port (junk connections included): %v; %d junk dials failed; probing took %s",
		sent, failed, time.Since(probing).Round(time.Millisecond))

	acked, startErrs := stop()
	stopped = true
	t.Logf("load: %d workflows acknowledged, %d starts failed %v", len(acked), len(startErrs), startErrs)
	require.NotEmpty(t, acked)

	// Every member is up and sees the other two.
	for _, cm := range members {
		var others []string
		for _, o := range members {
			if o != cm {
				others = append(others, o.cfg.NodeID)
			}
		}
		require.Eventually(t, func() bool {
			got := slices.Clone(peersOf(cm.m))
			slices.Sort(got)
			return slices.Equal(got, others)
		}, 20*time.Second, 20*time.Millisecond, "%s sees %v, not %v", cm.cfg.NodeID, peersOf(cm.m), others)
	}
	// Every acknowledged workflow completes, as seen from every member; so
	// does one started now.
	for _, id := range acked {
		for _, cm := range members {
			waitDone(t, cm.m, id)
		}
	}
	startSeq(t, members[0].m, "after-hostile")
	for _, cm := range members {
		waitDone(t, cm.m, "after-hostile")
	}

	// The goroutines the probes started end (the members close junk
	// connections within their handshake and header timeouts).
	var endG int
	require.Eventually(t, func() bool {
		endG = runtime.NumGoroutine()
		return endG <= baseG+hostileGoroutineMargin
	}, 30*time.Second, 50*time.Millisecond, "goroutines stayed above %d+%d", baseG, hostileGoroutineMargin)
	end := settledMem(t)
	t.Logf("before: %s, %d goroutines; after: %s, %d goroutines (race detector: %v); %s since the cluster started",
		base, baseG, end, endG, raceDetector, time.Since(began).Round(time.Millisecond))
	slack := uint64(rssSlack)
	if raceDetector {
		slack = rssSlackRace
	}
	require.LessOrEqual(t, end.rss, 2*base.rss+slack, "RSS grew beyond twice its baseline plus %d MiB", slack>>20)
	require.LessOrEqual(t, end.heap, 2*base.heap+heapSlack, "the live heap kept what the probes made the members allocate")
}
