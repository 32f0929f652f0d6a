package chaos

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/lni/dragonboat/v4/config"
	"github.com/lni/dragonboat/v4/raftio"
	pb "github.com/lni/dragonboat/v4/raftpb"
)

// raftQueueLen bounds the batches or chunks in flight on one connection; a
// sender blocks beyond it, as on a full TCP window.
const raftQueueLen = 64

// RaftTransportFactory returns the Dragonboat transport factory of endpoint
// name; set it as NodeHostConfig.Expert.TransportFactory. The NodeHost's
// RaftAddress (e.g. "n1:7000") is registered in the Network when the transport
// starts, and other transports deliver to whichever transport is registered
// under their target address. Two live transports cannot share an address.
//
// Message batches and snapshot chunks are copied (marshalled) and delivered
// in order per connection by a goroutine of the receiving transport. Each goes
// through [Network.Allowed] with the sending endpoint's name and the receiving
// transport's endpoint name:
//   - a refused message batch is dropped and SendMessageBatch returns nil, so
//     Dragonboat sees loss without tearing the connection down;
//   - a refused snapshot chunk fails SendChunk with an [ErrUnreachable] error,
//     because a hole in a snapshot stream cannot be repaired (Dragonboat
//     retries the snapshot later);
//   - a delayed one is delivered after the delay, keeping order.
//
// Connecting succeeds whenever the target address is registered, even across a
// cut (faults apply per message). Connecting to an unregistered address fails.
func (n *Network) RaftTransportFactory(name string) config.TransportFactory {
	return &RaftFactory{n: n, name: name}
}

// RaftFactory is the config.TransportFactory returned by
// [Network.RaftTransportFactory]. It is safe for concurrent use.
type RaftFactory struct {
	n    *Network
	name string
}

var _ config.TransportFactory = (*RaftFactory)(nil)

// Create returns the transport for one NodeHost.
func (f *RaftFactory) Create(cfg config.NodeHostConfig, h raftio.MessageHandler,
	ch raftio.ChunkHandler) raftio.ITransport {
	return &raftTransport{
		n:            f.n,
		name:         f.name,
		addr:         cfg.RaftAddress,
		handler:      h,
		chunkHandler: ch,
		done:         make(chan struct{}),
	}
}

// Validate reports whether addr is a "host:port" address with a non-empty host
// and a numeric port, such as "n1:7000".
func (f *RaftFactory) Validate(addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	p, err := strconv.ParseUint(port, 10, 16)
	return err == nil && p > 0
}

type raftTransport struct {
	n            *Network
	name         string
	addr         string
	handler      raftio.MessageHandler
	chunkHandler raftio.ChunkHandler

	done      chan struct{}
	closeOnce sync.Once
	mu        sync.Mutex // guards closed and wg.Add
	closed    bool
	wg        sync.WaitGroup // connection-serving goroutines
}

var _ raftio.ITransport = (*raftTransport)(nil)

func (t *raftTransport) Name() string { return "chaos.RaftTransport" }

// Start registers the transport under its RaftAddress.
func (t *raftTransport) Start() error {
	t.mu.Lock()
	closed := t.closed
	t.mu.Unlock()
	if closed {
		return ErrClosed
	}
	n := t.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return ErrClosed
	}
	if other, ok := n.raftByAddr[t.addr]; ok && other != t {
		return fmt.Errorf("chaos: raft address %q already in use by endpoint %q", t.addr, other.name)
	}
	n.raftByAddr[t.addr] = t
	return nil
}

// Close unregisters the transport, stops delivering to it and waits for its
// goroutines. It is idempotent.
func (t *raftTransport) Close() error {
	t.closeOnce.Do(func() {
		t.mu.Lock()
		t.closed = true
		close(t.done)
		t.mu.Unlock()
		t.n.mu.Lock()
		if t.n.raftByAddr[t.addr] == t {
			delete(t.n.raftByAddr, t.addr)
		}
		t.n.mu.Unlock()
		t.wg.Wait()
	})
	return nil
}

func (t *raftTransport) GetConnection(ctx context.Context, target string) (raftio.IConnection, error) {
	return t.connect(target, false)
}

func (t *raftTransport) GetSnapshotConnection(ctx context.Context, target string) (raftio.ISnapshotConnection, error) {
	return t.connect(target, true)
}

func (t *raftTransport) connect(target string, snapshot bool) (*raftConn, error) {
	if isDone(t.done) {
		return nil, ErrClosed
	}
	t.n.mu.Lock()
	dest := t.n.raftByAddr[target]
	t.n.mu.Unlock()
	if dest == nil {
		return nil, fmt.Errorf("chaos: raft connect %s -> %s: connection refused", t.name, target)
	}
	c := &raftConn{
		from:     t,
		to:       dest,
		snapshot: snapshot,
		q:        make(chan raftItem, raftQueueLen),
		closed:   make(chan struct{}),
		dead:     make(chan struct{}),
	}
	if !dest.serve(c) {
		return nil, fmt.Errorf("chaos: raft connect %s -> %s: connection refused", t.name, target)
	}
	return c, nil
}

// serve starts the goroutine delivering c's traffic to t; false if t is closed.
func (t *raftTransport) serve(c *raftConn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.wg.Go(func() {
		defer close(c.dead)
		for {
			select {
			case it := <-c.q:
				if !c.deliver(it) {
					return
				}
			case <-t.done:
				return
			case <-c.from.done:
				return
			case <-c.closed:
				for { // deliver what was sent before Close
					select {
					case it := <-c.q:
						if !c.deliver(it) {
							return
						}
					default:
						return
					}
				}
			}
		}
	})
	return true
}

type raftItem struct {
	data []byte
	at   time.Time // zero: deliver now
}

// raftConn implements both raftio.IConnection and raftio.ISnapshotConnection.
type raftConn struct {
	from, to  *raftTransport
	snapshot  bool
	q         chan raftItem
	closed    chan struct{} // closed by Close
	closeOnce sync.Once
	dead      chan struct{} // closed when the serving goroutine exits
}

var (
	_ raftio.IConnection         = (*raftConn)(nil)
	_ raftio.ISnapshotConnection = (*raftConn)(nil)
)

func (c *raftConn) Close() { c.closeOnce.Do(func() { close(c.closed) }) }

func (c *raftConn) SendMessageBatch(batch pb.MessageBatch) error {
	if c.snapshot {
		return fmt.Errorf("chaos: message batch sent on a snapshot connection")
	}
	if err := c.usable(); err != nil {
		return err
	}
	ok, d := c.from.n.decide(c.from.name, c.to.name, batch.Size())
	if !ok {
		return nil // lost in transit
	}
	return c.enqueue(pb.MustMarshal(&batch), d)
}

func (c *raftConn) SendChunk(chunk pb.Chunk) error {
	if !c.snapshot {
		return fmt.Errorf("chaos: snapshot chunk sent on a message connection")
	}
	if err := c.usable(); err != nil {
		return err
	}
	ok, d := c.from.n.decide(c.from.name, c.to.name, chunk.Size())
	if !ok {
		return &unreachableError{op: "snapshot chunk", from: c.from.name, to: c.to.name}
	}
	return c.enqueue(pb.MustMarshal(&chunk), d)
}

func (c *raftConn) usable() error {
	if isDone(c.closed) || isDone(c.dead) || isDone(c.from.done) || isDone(c.to.done) {
		return ErrClosed
	}
	return nil
}

func (c *raftConn) enqueue(data []byte, d time.Duration) error {
	it := raftItem{data: data}
	if d > 0 {
		it.at = time.Now().Add(d)
	}
	select {
	case c.q <- it:
		return nil
	case <-c.dead:
	case <-c.closed:
	case <-c.from.done:
	}
	return ErrClosed
}

// deliver hands one item to the receiving NodeHost; false ends the connection.
func (c *raftConn) deliver(it raftItem) bool {
	if !it.at.IsZero() && !wait(time.Until(it.at), c.to.done, c.from.done, nil) {
		return false
	}
	if c.snapshot {
		var chunk pb.Chunk
		if err := chunk.Unmarshal(it.data); err != nil {
			return false
		}
		if !c.to.chunkHandler(chunk) {
			return false
		}
	} else {
		var batch pb.MessageBatch
		if err := batch.Unmarshal(it.data); err != nil {
			return false
		}
		c.to.handler(batch)
	}
	c.from.n.postSend(c.from.name, c.to.name, len(it.data))
	return true
}

func isDone(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
