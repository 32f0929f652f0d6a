package gossip

import (
	"bytes"
	"compress/lzw"
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/stretchr/testify/require"
)

// memberlist's wire format, built by hand (memberlist net.go, v0.7.0): one
// message-type byte followed by msgpack-encoded structs (structs as maps
// keyed by field name). Streams and packets carry no framing of their own.
const (
	wirePing     = 0
	wireAlive    = 4
	wirePushPull = 6
	wireCompound = 7
	wireUser     = 8
	wireCompress = 9
	wireEncrypt  = 10
	wireHasCRC   = 12
)

type wirePushPullHeader struct {
	Nodes        int
	UserStateLen int
	Join         bool
}

type wirePushNodeState struct {
	Name        string
	Addr        []byte
	Port        uint16
	Meta        []byte
	Incarnation uint32
	State       int
	Vsn         []uint8
}

type wireUserMsgHeader struct {
	UserMsgLen int
}

type wireAliveMsg struct {
	Incarnation uint32
	Node        string
	Addr        []byte
	Port        uint16
	Meta        []byte
	Vsn         []uint8
}

type wirePingMsg struct {
	SeqNo uint32
	Node  string
}

type wireCompressMsg struct {
	Algo int
	Buf  []byte
}

// frame returns the message type byte followed by each value msgpack-encoded.
func frame(t *testing.T, msgType byte, vals ...any) []byte {
	t.Helper()
	var buf bytes.Buffer
	buf.WriteByte(msgType)
	enc := codec.NewEncoder(&buf, &codec.MsgpackHandle{})
	for _, v := range vals {
		require.NoError(t, enc.Encode(v))
	}
	return buf.Bytes()
}

// lzwBomb returns an LZW stream (LSB, 8-bit literals, as memberlist's
// compressMsg uses) that inflates to at least n zero bytes. It mirrors
// compress/lzw's decoder: after the first literal, each new code is the
// "KwKwK" code (previous string plus its first byte), so code c expands to
// c-256 zeros; once the 12-bit table is full, the last code (3839 zeros) is
// repeated, which the decoder accepts without growing its table. The result
// is about 1/2500 of n.
func lzwBomb(n int64) []byte {
	const (
		clear    = 256
		eof      = 257
		maxWidth = 12
	)
	var (
		out      []byte
		acc      uint64
		bits     uint
		width    uint = 9
		hi            = eof
		overflow      = 1 << 9
		full     bool
	)
	put := func(code int) {
		acc |= uint64(code) << bits
		bits += width
		for bits >= 8 {
			out = append(out, byte(acc))
			acc >>= 8
			bits -= 8
		}
	}
	step := func() { // the decoder's bookkeeping after each code
		hi++
		if hi >= overflow {
			if width == maxWidth {
				hi--
				full = true
			} else {
				width++
				overflow <<= 1
			}
		}
	}
	var produced int64
	if n > 0 {
		put(0)
		produced++
		step()
	}
	for produced < n {
		code := hi // KwKwK until the table is full, then its last entry
		if full {
			code = 1<<maxWidth - 1
		}
		put(code)
		produced += int64(code - clear)
		step()
	}
	put(eof)
	if bits > 0 {
		out = append(out, byte(acc))
	}
	return out
}

func TestLZWBombInflatesAsComputed(t *testing.T) {
	t.Parallel()
	const n = 8 << 20
	bomb := lzwBomb(n)
	got, err := io.Copy(io.Discard, lzw.NewReader(bytes.NewReader(bomb), lzw.LSB, 8))
	require.NoError(t, err)
	require.GreaterOrEqual(t, got, int64(n))
	require.Less(t, got, int64(n)+4096)
	t.Logf("%d bytes inflate to %d (ratio %d)", len(bomb), got, got/int64(len(bomb)))
}

// sendTCP dials addr, writes b, half-closes and reads until the node closes
// the connection or the deadline passes.
func sendTCP(addr string, b []byte, deadline time.Duration) error {
	conn, err := net.DialTimeout("tcp", addr, deadline)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(deadline))
	if _, err := conn.Write(b); err != nil {
		return err
	}
	_ = conn.(*net.TCPConn).CloseWrite()
	_, err = io.Copy(io.Discard, conn)
	return err
}

func sendUDP(t *testing.T, addr string, b []byte) {
	t.Helper()
	conn, err := net.Dial("udp", addr)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.Write(b)
	require.NoError(t, err)
}

type memStats struct{ heapInuse, sys uint64 }

func readMem() memStats {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memStats{heapInuse: ms.HeapInuse, sys: ms.Sys}
}

// TestHostileInput sends one member's gossip port (TCP and UDP) what a
// hostile neighbour would, then checks that the member still works, did not
// keep the memory it was made to allocate, and did not leak goroutines.
// Not parallel, so that the memory and goroutine counts are this test's.
func TestHostileInput(t *testing.T) {
	// The victim logs to t.Log, except while the junk connections arrive.
	logs := &testWriter{t: t, prefix: "[victim] "}
	t.Cleanup(func() { logs.mute(true) })
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
	randBytes := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return b
	}
	u32 := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

	const bombSize = 1 << 30
	bomb := lzwBomb(bombSize)
	udpBomb := lzwBomb(int64(60000) * 2500) // fits one UDP datagram
	t.Logf("LZW bombs: %d bytes -> 1 GiB (TCP), %d bytes -> %d MiB (UDP)", len(bomb), len(udpBomb), 60000*2500>>20)
	validHeader := frame(t, wirePushPull, wirePushPullHeader{Nodes: 1, UserStateLen: 0, Join: true})

	tcpProbes := []struct {
		name string
		b    []byte
	}{
		{"push/pull header Nodes=-1", frame(t, wirePushPull, wirePushPullHeader{Nodes: -1})},
		{"push/pull header Nodes=MinInt", frame(t, wirePushPull, wirePushPullHeader{Nodes: -1 << 63})},
		{"push/pull header Nodes=1<<20 (memberlist's own limit; 112 MiB)", frame(t, wirePushPull, wirePushPullHeader{Nodes: 1 << 20})},
		{"push/pull header Nodes=16385", frame(t, wirePushPull, wirePushPullHeader{Nodes: 16<<10 + 1})},
		{"push/pull header UserStateLen=20 MiB (memberlist's own limit)", frame(t, wirePushPull, wirePushPullHeader{UserStateLen: 20 << 20})},
		{"push/pull header UserStateLen=-1", frame(t, wirePushPull, wirePushPullHeader{UserStateLen: -1})},
		{"push/pull header UserStateLen=1<<40", frame(t, wirePushPull, wirePushPullHeader{UserStateLen: 1 << 40})},
		{"compressed push/pull inflating to 1 GiB", frame(t, wireCompress, wireCompressMsg{Algo: 0, Buf: bomb})},
		{"compressed message, unknown algorithm", frame(t, wireCompress, wireCompressMsg{Algo: 7, Buf: bomb[:1024]})},
		{"compressed message inflating to nothing", frame(t, wireCompress, wireCompressMsg{Buf: lzwBomb(0)})},
		{"user message UserMsgLen=-1", frame(t, wireUser, wireUserMsgHeader{UserMsgLen: -1})},
		{"user message UserMsgLen=20 MiB (memberlist's own limit)", frame(t, wireUser, wireUserMsgHeader{UserMsgLen: 20 << 20})},
		{"compressed ping inflating to 1 MiB of zeros", frame(t, wireCompress, wireCompressMsg{Buf: lzwBomb(1 << 20)})},
		{"user message UserMsgLen=1<<40", frame(t, wireUser, wireUserMsgHeader{UserMsgLen: 1 << 40})},
		{"encrypted frame of 4 GiB on a member without a key", append([]byte{wireEncrypt}, u32(0xffffffff)...)},
		{"msgpack bin32 length 4 GiB in a compressed frame", append([]byte{wireCompress, 0x82, 0xa4, 'A', 'l', 'g', 'o', 0x00, 0xa3, 'B', 'u', 'f', 0xc6}, u32(0xffffffff)...)},
		{"msgpack map32 length 4 GiB as push/pull header", append([]byte{wirePushPull, 0xdf}, u32(0xffffffff)...)},
		{"msgpack array32 length 4 GiB as node state", append(slicesClone(validHeader), append([]byte{0xdd}, u32(0xffffffff)...)...)},
		{"truncated push/pull header", validHeader[:len(validHeader)/2]},
		{"push/pull header without its node", validHeader},
		{"truncated compressed frame", frame(t, wireCompress, wireCompressMsg{Buf: bomb})[:5000]},
		{"message type only", []byte{wirePushPull}},
		{"unknown message type", []byte{200, 1, 2, 3}},
		{"join with a node of bad fields (short Vsn, 1-byte address, unknown state)", frame(t, wirePushPull,
			wirePushPullHeader{Nodes: 1, Join: true},
			wirePushNodeState{Name: "", Addr: []byte{1}, Port: 0, Meta: randBytes(600), State: 99, Vsn: []uint8{1}})},
		{"join with a node of bad fields (Vsn of 6 zero versions)", frame(t, wirePushPull,
			wirePushPullHeader{Nodes: 1, Join: true},
			wirePushNodeState{Name: "ghost", Addr: net.IPv4(127, 0, 0, 1).To4(), Port: 1, State: 0, Vsn: make([]uint8, 6)})},
		{"ping for another node", frame(t, wirePing, wirePingMsg{SeqNo: 1, Node: "someone-else"})},
		{"random bytes", randBytes(4096)},
	}
	for _, p := range tcpProbes {
		err := sendTCP(addr, p.b, 5*time.Second)
		t.Logf("TCP probe %q (%d bytes): connection ended with %v", p.name, len(p.b), err)
	}

	udpProbes := []struct {
		name string
		b    []byte
	}{
		{"compressed packet inflating to 143 MiB", frame(t, wireCompress, wireCompressMsg{Buf: udpBomb})},
		{"compressed packet, truncated", frame(t, wireCompress, wireCompressMsg{Buf: udpBomb})[:100]},
		{"alive with bad fields", frame(t, wireAlive, wireAliveMsg{Node: "x", Addr: []byte{1}, Meta: randBytes(600), Vsn: []uint8{1, 2}})},
		{"alive with no fields", frame(t, wireAlive, struct{}{})},
		{"compound with 255 parts of huge lengths", append([]byte{wireCompound, 255}, bytes.Repeat([]byte{0xff, 0xff}, 255)...)},
		{"CRC frame with a bad checksum", append([]byte{wireHasCRC, 1, 2, 3, 4}, wirePing)},
		{"user message of junk", append([]byte{wireUser}, randBytes(1000)...)},
		{"message type only", []byte{wireAlive}},
		{"empty packet", nil},
	}
	for i := range 200 {
		udpProbes = append(udpProbes, struct {
			name string
			b    []byte
		}{"random bytes " + strconv.Itoa(i), randBytes(1 + rng.IntN(1400))})
	}
	for _, p := range udpProbes {
		sendUDP(t, addr, p.b)
	}
	t.Logf("sent %d UDP probes", len(udpProbes))

	// 5,000 junk connections, 50 at a time: some send nothing, some a few
	// random bytes, some half a header.
	logs.mute(true)
	const junk = 5000
	var wg sync.WaitGroup
	sem := make(chan struct{}, 50)
	var mu sync.Mutex
	failedDials := 0
	for i := range junk {
		var payload []byte
		switch i % 3 {
		case 1:
			payload = randBytes(1 + rng.IntN(64))
		case 2:
			payload = validHeader[:3]
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				mu.Lock()
				failedDials++
				mu.Unlock()
				return
			}
			if len(payload) > 0 {
				_, _ = conn.Write(payload)
			}
			_ = conn.Close()
		})
	}
	wg.Wait()
	logs.mute(false)
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

func slicesClone(b []byte) []byte { return append([]byte(nil), b...) }

func lzwWriter(w io.Writer) io.WriteCloser { return lzw.NewWriter(w, lzw.LSB, 8) }
