package harness

import (
	"bufio"
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eleven-am/graft"
)

// ProcessOptions configure process mode, where every member runs in a child
// process of its own and the members talk over real loopback sockets
// (TCP for Raft and member RPC, TCP and UDP for gossip).
//
// The harness starts each member as Command with the member's
// description in the environment; the program must call [MemberMain] at
// the start of its main (graft-chaos and this package's tests do), which
// runs the member and never returns in such a process. The member
// registers the workload's node types (and MemberOptions.Register's),
// starts, serves a small HTTP control server on 127.0.0.1 (client
// operations, its state, a graceful stop; only for the holder of a
// per-run token) and streams every step execution to the harness over a
// pipe as it ends. The workload, the history and the checkers stay in the
// harness: each client operation is an HTTP call to the member picked, its
// invocation and return timed around that call.
//
// The faults a process boundary allows: [FaultCrash] (SIGKILL: nothing of
// the member runs after it, not even its steps' cancellation, and nothing
// is closed cleanly), [FaultRestart] (a new process on the same data
// directory and ports), [FaultWipe], [FaultJoin], [FaultLeave] and
// [FaultDiskFloor]/[FaultDiskFloorOff] (graceful stop and a start with
// another free-space floor). Network faults (partitions, isolation, drops,
// delays, heal) need the in-process [chaos.Network], and the disk-full and
// slow-disk faults its [chaos.FaultFS]: [Run] refuses a schedule with any
// of them in process mode, naming the fault. Scenario.Config is applied in
// the member process only for a named scenario (the member looks it up by
// name); Options.Register and Options.Config cannot cross the process
// boundary (pass MemberOptions to MemberMain instead) and are refused.
type ProcessOptions struct {
	// Command is the member program and its arguments. Empty means this
	// program (os.Executable()) without arguments.
	Command []string
}

// MemberOptions are what a member process adds to the harness's member:
// the user's node types and configuration, as Options.Register and
// Options.Config do in this process.
type MemberOptions struct {
	// Register registers the user's node types on the member.
	Register func(*graft.Manager) error
	// Config adjusts the member's configuration after the harness and
	// the scenario set it.
	Config func(*graft.Config)
}

// memberEnv carries a member process's description (a memberSpec in JSON).
const memberEnv = "GRAFT_CHAOS_MEMBER"

// processFaults are the faults process mode applies.
var processFaults = []FaultKind{FaultCrash, FaultRestart, FaultWipe, FaultJoin, FaultLeave, FaultDiskFloor, FaultDiskFloorOff}

// ProcessFaults returns the fault kinds a run in process mode can apply.
func ProcessFaults() []FaultKind { return slices.Clone(processFaults) }

// checkProcessMode says why sc cannot run in process mode with opts and
// faults, if it cannot.
func checkProcessMode(sc Scenario, opts Options, faults []Fault) error {
	if opts.Register != nil || opts.Config != nil {
		return errors.New("process mode: Options.Register and Options.Config cannot reach a member process; pass them to harness.MemberMain in the member program")
	}
	if sc.Config != nil {
		if _, ok := ScenarioNamed(sc.Name); !ok {
			return fmt.Errorf("process mode: scenario %q sets Config, which a member process can apply only for a named scenario", sc.Name)
		}
	}
	for _, f := range faults {
		if !slices.Contains(processFaults, f.Kind) {
			return fmt.Errorf("process mode cannot apply scenario %s's fault %q (%s): it supports only %v", sc.Name, f.Kind, f, processFaults)
		}
	}
	return nil
}

// memberSpec describes a member process: everything its configuration and
// its recording need.
type memberSpec struct {
	Name       string             `json:"name"`
	DataDir    string             `json:"data_dir"`
	BindAddr   string             `json:"bind_addr"`
	GossipPort int                `json:"gossip_port"`
	Members    int                `json:"members"`
	Shards     int                `json:"shards"`
	Peers      []graft.StaticPeer `json:"peers"`
	DiskFloor  bool               `json:"disk_floor,omitempty"`
	// Scenario names the scenario whose Config applies ("" for none).
	Scenario string `json:"scenario,omitempty"`
	// RunStart is the start of the run in Unix nanoseconds: step times
	// are offsets from it (wall clock; the harness's are monotonic).
	RunStart int64 `json:"run_start"`
	// Log makes the member log its warnings and errors to stderr.
	Log bool `json:"log,omitempty"`
	// Token authorises calls to the member's control server.
	Token string `json:"token"`
}

// config returns the member's configuration without its logger.
func (s memberSpec) config() *graft.Config {
	cfg := graft.DefaultConfig(s.Name, s.BindAddr, s.DataDir)
	cfg.Cluster.ExpectedMembers = s.Members
	cfg.Cluster.ShardCount = s.Shards
	cfg.Cluster.GossipPort = s.GossipPort
	cfg.Discovery = []graft.DiscoveryConfig{{Type: graft.DiscoveryStatic, Static: slices.Clone(s.Peers)}}
	cfg.Expert.Memberlist = fastGossip
	cfg.Engine.RetryDelay, cfg.Engine.MaxRetryDelay = 5*time.Millisecond, 50*time.Millisecond
	cfg.Engine.DrainTimeout = 2 * time.Second
	if s.DiskFloor {
		cfg.Expert.MinFreeDiskBytes = fullDisk
	}
	return cfg
}

// processes runs the member processes of one run.
type processes struct {
	h       *harness
	command []string
	token   string
	ports   map[string]int // each member's Raft port; gossip is the next one
	peers   []graft.StaticPeer
	// procs tracks every process's reader and waiter goroutines.
	procs sync.WaitGroup

	mu   sync.Mutex
	live map[*memberProcess]bool
}

// newProcesses picks the members' ports and the member program.
func newProcesses(h *harness) (*processes, error) {
	p := &processes{h: h, command: slices.Clone(h.opts.Process.Command), ports: map[string]int{}, live: map[*memberProcess]bool{}}
	if len(p.command) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("process mode: finding this program to run members: %w", err)
		}
		p.command = []string{exe}
	}
	tok := make([]byte, 16)
	if _, err := crand.Read(tok); err != nil {
		return nil, fmt.Errorf("process mode: a control token: %w", err)
	}
	p.token = hex.EncodeToString(tok)
	taken := map[int]bool{}
	for _, n := range h.names {
		port, err := freePortPair(taken)
		if err != nil {
			return nil, err
		}
		p.ports[n] = port
		p.peers = append(p.peers, graft.StaticPeer{ID: n, Address: "127.0.0.1", Port: port, GossipPort: port + 1})
	}
	return p, nil
}

// freePortPair returns a loopback port that, with the next one, nothing
// listens on (TCP or UDP) and taken does not hold, and adds both to taken.
// It picks below the kernel's usual ephemeral range (32768 and up), which
// outgoing connections draw from.
func freePortPair(taken map[int]bool) (int, error) {
	free := func(port int) bool {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return false
		}
		defer func() { _ = l.Close() }()
		u, err := net.ListenPacket("udp", addr)
		if err != nil {
			return false
		}
		_ = u.Close()
		return true
	}
	for range 1000 {
		port := 10000 + rand.IntN(22000)
		if !taken[port] && !taken[port+1] && free(port) && free(port+1) {
			taken[port], taken[port+1] = true, true
			return port, nil
		}
	}
	return 0, errors.New("process mode: no free pair of loopback ports found")
}

// addr is member name's Raft address.
func (p *processes) addr(name string) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.ports[name]))
}

// gossipPort is member name's gossip port.
func (p *processes) gossipPort(name string) int { return p.ports[name] + 1 }

// start starts member name's process and waits until it is ready (its
// Manager started, its control server listening) or ctx ends.
func (p *processes) start(ctx context.Context, name string) (member, string, error) {
	h := p.h
	spec := h.spec(name)
	spec.RunStart, spec.Log, spec.Token = h.rec.start.UnixNano(), h.opts.MemberLogger != nil, p.token
	if h.sc.Config != nil {
		spec.Scenario = h.sc.Name
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, "", fmt.Errorf("member %s: encoding its description: %w", name, err)
	}
	msgR, msgW, err := os.Pipe()
	if err != nil {
		return nil, "", fmt.Errorf("member %s: a pipe: %w", name, err)
	}
	cmd := exec.Command(p.command[0], p.command[1:]...)
	cmd.Env = append(os.Environ(), memberEnv+"="+string(b))
	cmd.ExtraFiles = []*os.File{msgW} // fd 3 in the member
	logger := slog.New(slog.DiscardHandler)
	if h.opts.MemberLogger != nil {
		logger = h.opts.MemberLogger(name)
	}
	out := &lineLogger{log: logger}
	cmd.Stdout, cmd.Stderr = out, out
	stdin, err := cmd.StdinPipe()
	if err != nil {
		_, _ = msgR.Close(), msgW.Close()
		return nil, "", fmt.Errorf("member %s: %w", name, err)
	}
	if err := cmd.Start(); err != nil {
		_, _ = msgR.Close(), msgW.Close()
		return nil, "", fmt.Errorf("member %s: starting %s: %w", name, p.command[0], err)
	}
	_ = msgW.Close()
	mp := &memberProcess{name: name, cmd: cmd, stdin: stdin, token: p.token, ready: make(chan string, 1),
		exited: make(chan struct{}), client: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}}
	p.mu.Lock()
	p.live[mp] = true
	p.mu.Unlock()
	p.procs.Go(func() {
		p.read(mp, msgR)
		_ = msgR.Close()
		mp.exitErr = cmd.Wait()
		out.flush()
		close(mp.exited)
		p.mu.Lock()
		delete(p.live, mp)
		p.mu.Unlock()
		if !mp.ending.Load() {
			h.processDied(name, mp, out.last())
		}
	})
	select {
	case addr := <-mp.ready:
		mp.base = "http://" + addr
		return mp, spec.DataDir, nil
	case <-mp.exited:
		return nil, "", fmt.Errorf("member %s: its process ended before it was ready: %v (its last output: %s)", name, mp.exitErr, out.last())
	case <-ctx.Done():
		mp.kill()
		<-mp.exited
		return nil, "", fmt.Errorf("member %s: not ready: %w", name, ctx.Err())
	}
}

// processMessage is one line a member process writes to the harness.
type processMessage struct {
	// Ready is the control server's address, sent once the member started.
	Ready string `json:"ready,omitempty"`
	// Step is a step execution that ended.
	Step *StepRun `json:"step,omitempty"`
}

// maxMessage bounds one line from a member process.
const maxMessage = 1 << 20

// read records what member process mp sends until its pipe closes.
func (p *processes) read(mp *memberProcess, r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxMessage)
	for sc.Scan() {
		var m processMessage
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			p.h.log.Warn("chaos: a member process sent a line that is not a message", "member", mp.name, "error", err)
			continue
		}
		if m.Step != nil {
			p.h.rec.step(*m.Step)
		}
		if m.Ready != "" {
			select {
			case mp.ready <- m.Ready:
			default:
			}
		}
	}
	if err := sc.Err(); err != nil {
		p.h.log.Warn("chaos: reading a member process's messages", "member", mp.name, "error", err)
	}
}

// close kills every member process still running and waits for them.
func (p *processes) close() {
	p.mu.Lock()
	var live []*memberProcess
	for mp := range p.live {
		live = append(live, mp)
	}
	p.mu.Unlock()
	for _, mp := range live {
		mp.kill()
	}
	p.procs.Wait()
}

// memberProcess is a member running in a child process.
type memberProcess struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	token  string
	base   string
	client *http.Client
	ready  chan string
	// ending is set once the harness killed the process or asked it to
	// stop: an exit before that is the member's own doing.
	ending atomic.Bool
	// exited is closed when the process has ended; exitErr is then its
	// exit status.
	exited  chan struct{}
	exitErr error
}

// kill ends the process at once (SIGKILL).
func (mp *memberProcess) kill() {
	mp.ending.Store(true)
	_ = mp.cmd.Process.Kill()
	_ = mp.stdin.Close()
}

// opRequest is a client operation sent to a member process.
type opRequest struct {
	Kind     OpKind                 `json:"kind"`
	Workflow string                 `json:"workflow"`
	Trigger  *graft.WorkflowTrigger `json:"trigger,omitempty"`
	// Timeout bounds the call in the member.
	Timeout Duration `json:"timeout"`
}

// call sends the operation to the member's control server. A call that
// gets no answer (the member was killed, the connection broke, ctx ended)
// has an unknown outcome.
func (mp *memberProcess) call(ctx context.Context, p plannedOp) opResult {
	req := opRequest{Kind: p.Kind, Workflow: p.Workflow, Trigger: p.Trigger, Timeout: Duration(5 * time.Second)}
	if d, ok := ctx.Deadline(); ok {
		req.Timeout = Duration(time.Until(d))
	}
	var res opResult
	if err := mp.post(ctx, "/op", req, &res); err != nil {
		return opResult{Outcome: OutcomeUnknown, Error: "member process: " + err.Error()}
	}
	return res
}

// state reads the member's view through its control server.
func (mp *memberProcess) state(ctx context.Context) (memberView, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var v memberView
	err := mp.post(ctx, "/state", struct{}{}, &v)
	return v, err
}

// stopTimeout bounds a member process's graceful stop.
const stopTimeout = 60 * time.Second

// stop asks the member to stop gracefully and waits for its process to end;
// a member that does not stop within stopTimeout is killed.
func (mp *memberProcess) stop() error {
	mp.ending.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	var res memberView
	err := mp.post(ctx, "/stop", struct{}{}, &res)
	if err == nil && res.ServerError != "" {
		err = errors.New(res.ServerError)
	}
	select {
	case <-mp.exited:
	case <-ctx.Done():
		mp.kill()
		<-mp.exited
		return fmt.Errorf("member %s did not stop within %v: killed", mp.name, stopTimeout)
	}
	_ = mp.stdin.Close()
	if err != nil {
		return fmt.Errorf("stopping member %s: %w", mp.name, err)
	}
	return nil
}

// post sends body to the control server's path and decodes the answer.
func (mp *memberProcess) post(ctx context.Context, path string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, mp.base+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set(tokenHeader, mp.token)
	resp, err := mp.client.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxMessage))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", path, resp.Status, strings.TrimSpace(string(data)))
	}
	return json.Unmarshal(data, out)
}

// tokenHeader carries the run's token on control calls.
const tokenHeader = "X-Graft-Chaos-Token"

// lineLogger logs a member process's output a line at a time and keeps
// its last lines for an error message.
type lineLogger struct {
	log  *slog.Logger
	mu   sync.Mutex
	buf  []byte
	tail []string
}

// Write logs each complete line of b.
func (l *lineLogger) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, b...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.line(string(l.buf[:i]))
		l.buf = l.buf[i+1:]
	}
	if len(l.buf) > maxMessage { // a line without an end
		l.line(string(l.buf))
		l.buf = nil
	}
	return len(b), nil
}

// flush logs what is left of an unfinished line.
func (l *lineLogger) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		l.line(string(l.buf))
		l.buf = nil
	}
}

func (l *lineLogger) line(s string) {
	l.log.Warn("member output", "line", s)
	l.tail = append(l.tail, s)
	if len(l.tail) > 5 {
		l.tail = l.tail[1:]
	}
}

// last returns the last lines logged.
func (l *lineLogger) last() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.tail, " | ")
}

// MemberMain runs this process as a chaos member when the harness started
// it as one (in process mode; see ProcessOptions), and then never returns:
// the process exits when the member stops, when the harness asks it to or
// when the harness's end of its standard input closes (the harness died).
// In any other process it returns at once. Call it at the start of main
// (or TestMain) of the program ProcessOptions.Command names.
func MemberMain(opts MemberOptions) {
	raw, ok := os.LookupEnv(memberEnv)
	if !ok {
		return
	}
	if err := runMember(raw, opts); err != nil {
		fmt.Fprintf(os.Stderr, "graft-chaos member: %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// runMember runs the member raw describes until it is asked to stop.
func runMember(raw string, opts MemberOptions) error {
	var spec memberSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		return fmt.Errorf("decoding %s: %w", memberEnv, err)
	}
	msgs := os.NewFile(3, "harness")
	if msgs == nil {
		return errors.New("no message pipe on file descriptor 3")
	}
	sink := &pipeSink{w: msgs, start: time.Unix(0, spec.RunStart)}
	go func() { // the harness holds stdin open while it lives
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(3)
	}()

	cfg := spec.config()
	cfg.Logger = slog.New(slog.DiscardHandler)
	if spec.Log {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if spec.Scenario != "" {
		sc, ok := ScenarioNamed(spec.Scenario)
		if !ok {
			return fmt.Errorf("no scenario %q", spec.Scenario)
		}
		if sc.Config != nil {
			sc.Config(cfg)
		}
	}
	if opts.Config != nil {
		opts.Config(cfg)
	}
	m := graft.NewWithConfig(cfg)
	if err := registerNodes(m, spec.Name, sink); err != nil {
		return err
	}
	if opts.Register != nil {
		if err := opts.Register(m); err != nil {
			return fmt.Errorf("MemberOptions.Register: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	err := m.Start(ctx, 0)
	cancel()
	if err != nil {
		_ = m.Stop()
		return fmt.Errorf("starting: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = m.Stop()
		return fmt.Errorf("listening for control calls: %w", err)
	}
	stopped := make(chan error, 1)
	srv := &http.Server{Handler: controlHandler(m, spec.Token, stopped), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	if err := sink.send(processMessage{Ready: l.Addr().String()}); err != nil {
		_ = m.Stop()
		return fmt.Errorf("telling the harness it is ready: %w", err)
	}
	select {
	case err = <-stopped:
	case err = <-served:
		_ = m.Stop()
	}
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	_ = srv.Shutdown(sctx)
	return err
}

// controlHandler serves a member's control calls: POST /op (a client
// operation), /state (its view) and /stop (a graceful stop; its result is
// sent on stopped once answered).
func controlHandler(m *graft.Manager, token string, stopped chan<- error) http.Handler {
	var once sync.Once
	mux := http.NewServeMux()
	reply := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("POST /op", func(w http.ResponseWriter, r *http.Request) {
		var req opRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxMessage)).Decode(&req); err != nil {
			http.Error(w, "decoding the operation: "+err.Error(), http.StatusBadRequest)
			return
		}
		timeout := min(max(time.Duration(req.Timeout), time.Millisecond), 5*time.Minute)
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		reply(w, callManager(ctx, m, plannedOp{Kind: req.Kind, Workflow: req.Workflow, Trigger: req.Trigger}))
	})
	mux.HandleFunc("POST /state", func(w http.ResponseWriter, _ *http.Request) { reply(w, viewOf(m)) })
	mux.HandleFunc("POST /stop", func(w http.ResponseWriter, _ *http.Request) {
		err := m.Stop()
		v := memberView{}
		if err != nil {
			v.ServerError = err.Error()
		}
		reply(w, v)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		once.Do(func() { stopped <- err })
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(tokenHeader) != token {
			http.Error(w, "unauthorised", http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// pipeSink sends a member process's step executions to the harness, one
// JSON line each.
type pipeSink struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
}

func (s *pipeSink) now() Duration { return Duration(time.Since(s.start)) }

func (s *pipeSink) step(r StepRun) {
	if err := s.send(processMessage{Step: &r}); err != nil {
		fmt.Fprintf(os.Stderr, "graft-chaos member: sending a step record: %v\n", err)
	}
}

// send writes one message.
func (s *pipeSink) send(m processMessage) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err = s.w.Write(append(b, '\n'))
	return err
}

// RunsInProcesses reports whether process mode can apply every fault sc
// may schedule, judged on its schedules for seeds 1 to 20 over three
// members (a scenario drawing its faults from the seed may schedule others
// for other seeds; Run checks the actual schedule).
func RunsInProcesses(sc Scenario) bool {
	for seed := int64(1); seed <= 20; seed++ {
		for _, f := range sc.Schedule(seed, 3, 4, 10*time.Second) {
			if !slices.Contains(processFaults, f.Kind) {
				return false
			}
		}
	}
	return true
}

// processDied records that member name's process mp ended on its own (a
// panic, a fatal error) while it was up: the member counts as crashed from
// then on, so the end of the fault phase restarts it, and the report lists
// the crash with the process's exit and last output.
func (h *harness) processDied(name string, mp *memberProcess, output string) {
	h.mu.Lock()
	r := h.members[name]
	if r == nil || r.state != memberUp || r.m != member(mp) {
		h.mu.Unlock()
		return
	}
	r.state = memberCrashed
	r.stopped = mp.exited
	at := h.rec.now()
	h.applied = append(h.applied, AppliedFault{Fault: Fault{At: at, Kind: FaultCrash, Members: []string{name}}, Applied: at,
		Detail: fmt.Sprintf("the member process ended on its own (%v); its last output: %s", mp.exitErr, output)})
	h.mu.Unlock()
	h.log.Warn("chaos: a member process ended on its own", "member", name, "exit", mp.exitErr, "output", output)
}
