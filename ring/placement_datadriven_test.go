package ring

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/eleven-am/graft/internal/script"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output in testdata/*.txt with the actual output")

// TestPlacementScript runs the scripts in testdata. A script is a sequence
// of blocks separated by blank lines; lines starting with # are comments.
// A block is a command line, a "----" line, and the expected output:
//
//	members n1 n2 n3:2   set the membership (ID[:weight]); nothing is placed
//	place shards=8 rf=3  place the members (rf, load optional) and print it
//	add n4 …             add members and place again with the last config
//	remove n2 …          remove members and place again
//	owners 5             print shard 5's replicas, leader first
//	owners wf-1          the same for the shard that holds workflow wf-1
//	diff                 print the moves from the previous placement
//
// Run go test ./ring -run TestPlacementScript -rewrite to regenerate the
// expected output after a deliberate change, and review the diff.
func TestPlacementScript(t *testing.T) {
	t.Parallel()
	script.RunDir(t, ".", *rewrite, func() func(string) string {
		var s scriptState
		return s.run
	})
}

// scriptState is a script's membership and its last two placements.
type scriptState struct {
	members   []Member
	cfg       Config
	cur, prev *Placement
}

// run executes one command line and returns its output.
func (s *scriptState) run(line string) string {
	fields := strings.Fields(line)
	cmd, args := fields[0], fields[1:]
	switch cmd {
	case "members":
		s.members = nil
		if err := s.addMembers(args); err != nil {
			return "error: " + err.Error()
		}
		return "members: " + s.memberList()
	case "place":
		cfg, err := parseConfig(args)
		if err != nil {
			return "error: " + err.Error()
		}
		s.cfg = cfg
		return s.place()
	case "add":
		if err := s.addMembers(args); err != nil {
			return "error: " + err.Error()
		}
		return s.place()
	case "remove":
		for _, id := range args {
			n := len(s.members)
			s.members = without(s.members, id)
			if len(s.members) == n {
				return fmt.Sprintf("error: no member %q", id)
			}
		}
		return s.place()
	case "owners":
		if s.cur == nil || len(args) != 1 {
			return "error: usage: owners <shard|workflow-id> after place"
		}
		shard, err := strconv.ParseUint(args[0], 10, 64)
		prefix := ""
		if err != nil {
			shard = ShardFor(args[0], uint64(s.cur.ShardCount()))
			prefix = fmt.Sprintf("%s → ", args[0])
		}
		reps := s.cur.Replicas(shard)
		if reps == nil {
			return fmt.Sprintf("error: no shard %d", shard)
		}
		return fmt.Sprintf("%sshard %d: leader %s, followers %s", prefix, shard, reps[0], strings.Join(reps[1:], " "))
	case "diff":
		return formatMoves(s.prev, s.cur)
	default:
		return fmt.Sprintf("error: unknown command %q", cmd)
	}
}

// addMembers appends ID[:weight] arguments to the membership.
func (s *scriptState) addMembers(args []string) error {
	for _, a := range args {
		id, w, ok := strings.Cut(a, ":")
		m := Member{ID: id}
		if ok {
			n, err := strconv.Atoi(w)
			if err != nil {
				return fmt.Errorf("bad weight in %q", a)
			}
			m.Weight = n
		}
		s.members = append(s.members, m)
	}
	return nil
}

// memberList prints the membership in script order.
func (s *scriptState) memberList() string {
	var parts []string
	for _, m := range s.members {
		if m.Weight != 0 {
			parts = append(parts, fmt.Sprintf("%s:%d", m.ID, m.Weight))
		} else {
			parts = append(parts, m.ID)
		}
	}
	return strings.Join(parts, " ")
}

// place places the current members with the current config.
func (s *scriptState) place() string {
	p, err := Place(s.cfg, s.members)
	if err != nil {
		return "error: " + err.Error()
	}
	s.prev, s.cur = s.cur, p
	return formatPlacement(p)
}

// parseConfig parses shards=N rf=N load=F.
func parseConfig(args []string) (Config, error) {
	var cfg Config
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		var err error
		switch k {
		case "shards":
			cfg.ShardCount, err = strconv.Atoi(v)
		case "rf":
			cfg.ReplicationFactor, err = strconv.Atoi(v)
		case "load":
			cfg.Load, err = strconv.ParseFloat(v, 64)
		default:
			err = fmt.Errorf("unknown argument %q", a)
		}
		if err != nil {
			return Config{}, err
		}
	}
	return cfg, nil
}

// formatPlacement prints every shard's replicas (leader first) and each
// member's replica and leader counts.
func formatPlacement(p *Placement) string {
	var b strings.Builder
	for s := uint64(1); s <= uint64(p.ShardCount()); s++ {
		fmt.Fprintf(&b, "shard %d: %s\n", s, strings.Join(p.Replicas(s), " "))
	}
	for _, m := range p.Members() {
		fmt.Fprintf(&b, "%s: replicas %d, leads %d\n", m, len(p.ShardsOf(m)), len(p.LeadersOf(m)))
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// formatMoves prints Diff(from, to) and a summary.
func formatMoves(from, to *Placement) string {
	if to == nil {
		return "error: no placement yet"
	}
	moves := Diff(from, to)
	if len(moves) == 0 {
		return "no moves"
	}
	var b strings.Builder
	added := 0
	for _, m := range moves {
		var parts []string
		for _, id := range m.Add {
			parts = append(parts, "+"+id)
		}
		for _, id := range m.Remove {
			parts = append(parts, "-"+id)
		}
		added += len(m.Add)
		fmt.Fprintf(&b, "shard %d: %s\n", m.Shard, strings.Join(parts, " "))
	}
	total := to.ShardCount() * to.ReplicationFactor()
	fmt.Fprintf(&b, "%d of %d replicas added, on %d of %d shards", added, total, len(moves), to.shards())
	return b.String()
}
