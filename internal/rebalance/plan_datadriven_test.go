package rebalance

import (
	"flag"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eleven-am/graft/internal/script"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output in testdata/*.txt with the actual output")

// TestPlanScript runs the scripts in testdata. A script is a sequence of
// blocks separated by blank lines; lines starting with # are comments. A
// block is a command line, a "----" line, and the expected output. Times
// are offsets from the script's time zero (Go durations); member n1's Raft
// address is n1.raft. Each script starts with shard 1 led by n1, grace 30s,
// confirmations holding 30s, at time 0s.
//
//	config self=n1 grace=30s ttl=30s  set the leader, FailureGrace, ConfirmTTL
//	members n1 n2 n3                  set the members, all alive
//	fail n3 since=10s                 n3 failed, first seen so at 10s
//	leave n3 / alive n3               n3 left (or is leaving) / is alive
//	membership config=7 1=n1 3=x:1 removed=2
//	                                  set the committed membership; a value
//	                                  that is not a member is a Raft address
//	unowned x:1 since=5s              no member has had address x:1 since 5s
//	place n2 n1 n3                    set the placed replica set, leader first
//	confirm 2 3 at=10s                replicas 2 and 3 confirmed at 10s (or now)
//	unconfirm 2 / unconfirm all       drop confirmations
//	answer 2=no-answer 3=not-held     this pass's failed confirmations (none: clear)
//	lose 3 / mute 3                   for run: 3's member no longer holds it /
//	                                  does not answer (no replica: clear)
//	time 40s                          set now
//	plan                              print the action Plan returns
//	eligible                          print the members placement may use
//	run                               apply Plan's actions until it returns
//	                                  nothing (at most 30), printing each, then
//	                                  the membership
//
// Run go test ./internal/rebalance -run TestPlanScript -rewrite to
// regenerate the expected output after a deliberate change, and review the
// diff.
func TestPlanScript(t *testing.T) {
	t.Parallel()
	script.RunDir(t, ".", *rewrite, func() func(string) string {
		s := newSim("n1")
		return func(line string) string { return run(s, line) }
	})
}

// run executes one command line against s and returns its output.
func run(s *sim, line string) string {
	fields := strings.Fields(line)
	cmd, args := fields[0], fields[1:]
	out, err := runCommand(s, cmd, args)
	if err != nil {
		return "error: " + err.Error()
	}
	return out
}

func runCommand(s *sim, cmd string, args []string) (string, error) {
	in := &s.in
	switch cmd {
	case "config":
		for _, a := range args {
			k, v, _ := strings.Cut(a, "=")
			var err error
			switch k {
			case "self":
				in.Self = v
			case "grace":
				in.FailureGrace, err = time.ParseDuration(v)
			case "ttl":
				in.ConfirmTTL, err = time.ParseDuration(v)
			default:
				err = fmt.Errorf("unknown argument %q", a)
			}
			if err != nil {
				return "", err
			}
		}
		return fmt.Sprintf("leader %s, grace %s, confirmations hold %s", in.Self, in.FailureGrace, in.ConfirmTTL), nil
	case "members":
		clear(in.Members)
		for _, id := range args {
			in.Members[id] = Member{ID: id, Target: raftAddr(id), Status: Alive}
		}
		return describeMembers(in), nil
	case "fail", "leave", "alive":
		if len(args) == 0 {
			return "", fmt.Errorf("usage: %s <member> [since=<time>]", cmd)
		}
		m, ok := in.Members[args[0]]
		if !ok {
			return "", fmt.Errorf("no member %q", args[0])
		}
		m.Status, m.FailedSince = map[string]Status{"fail": Failed, "leave": Left, "alive": Alive}[cmd], time.Time{}
		if cmd == "fail" {
			at, err := timeArg(args[1:], "since", in.Now)
			if err != nil {
				return "", err
			}
			m.FailedSince = at
		}
		in.Members[m.ID] = m
		return describeMembers(in), nil
	case "membership":
		mem := Membership{Replicas: map[uint64]string{}, Removed: map[uint64]struct{}{}}
		for _, a := range args {
			k, v, _ := strings.Cut(a, "=")
			switch k {
			case "config":
				n, err := strconv.ParseUint(v, 10, 64)
				if err != nil {
					return "", fmt.Errorf("bad config in %q", a)
				}
				mem.ConfigChangeID = n
			case "removed":
				for _, f := range strings.Split(v, ",") {
					n, err := strconv.ParseUint(f, 10, 64)
					if err != nil {
						return "", fmt.Errorf("bad replica ID in %q", a)
					}
					mem.Removed[n] = struct{}{}
				}
			default:
				rid, err := strconv.ParseUint(k, 10, 64)
				if err != nil {
					return "", fmt.Errorf("unknown argument %q", a)
				}
				if _, ok := in.Members[v]; ok {
					v = raftAddr(v)
				}
				mem.Replicas[rid] = v
			}
		}
		in.Membership = mem
		return s.describeMembership(), nil
	case "unowned":
		if len(args) == 0 {
			return "", fmt.Errorf("usage: unowned <address> [since=<time>]")
		}
		at, err := timeArg(args[1:], "since", in.Now)
		if err != nil {
			return "", err
		}
		in.UnknownSince[args[0]] = at
		return fmt.Sprintf("no member has %s since %s", args[0], in.UnknownSince[args[0]].Sub(epoch)), nil
	case "place":
		in.Placed = slices.Clone(args)
		return fmt.Sprintf("placed: %s (preferred leader %s)", strings.Join(args, " "), preferred(args)), nil
	case "confirm", "unconfirm":
		var rids []uint64
		var rest []string
		for _, a := range args {
			if n, err := strconv.ParseUint(a, 10, 64); err == nil {
				rids = append(rids, n)
			} else {
				rest = append(rest, a)
			}
		}
		if cmd == "unconfirm" {
			if slices.Equal(rest, []string{"all"}) {
				clear(in.Confirmed)
			}
			for _, rid := range rids {
				delete(in.Confirmed, rid)
			}
			return describeConfirmed(in), nil
		}
		at, err := timeArg(rest, "at", in.Now)
		if err != nil {
			return "", err
		}
		for _, rid := range rids {
			in.Confirmed[rid] = at
		}
		return describeConfirmed(in), nil
	case "answer":
		clear(in.Answers)
		for _, a := range args {
			k, v, _ := strings.Cut(a, "=")
			rid, err := strconv.ParseUint(k, 10, 64)
			if err != nil {
				return "", fmt.Errorf("bad replica ID in %q", a)
			}
			switch v {
			case "no-answer":
				in.Answers[rid] = NoAnswer
			case "not-held":
				in.Answers[rid] = NotHeld
			default:
				return "", fmt.Errorf("bad answer in %q", a)
			}
		}
		return describeAnswers(in), nil
	case "lose", "mute":
		set := map[string]map[uint64]bool{"lose": s.lost, "mute": s.silent}[cmd]
		if len(args) == 0 {
			clear(set)
		}
		for _, a := range args {
			rid, err := strconv.ParseUint(a, 10, 64)
			if err != nil {
				return "", fmt.Errorf("bad replica ID %q", a)
			}
			set[rid] = true
		}
		return fmt.Sprintf("lost %v, not answering %v", slices.Sorted(maps.Keys(s.lost)), slices.Sorted(maps.Keys(s.silent))), nil
	case "time":
		if len(args) != 1 {
			return "", fmt.Errorf("usage: time <offset>")
		}
		d, err := time.ParseDuration(args[0])
		if err != nil {
			return "", err
		}
		in.Now = epoch.Add(d)
		return fmt.Sprintf("now %s", d), nil
	case "plan":
		return s.plan().String(), nil
	case "eligible":
		return "eligible: " + strings.Join(Eligible(in.Members, in.Now, in.FailureGrace), " "), nil
	case "run":
		var b strings.Builder
		for range 30 {
			a := s.plan()
			b.WriteString(a.String() + "\n")
			if a.Kind == Nothing {
				break
			}
			if err := s.apply(a); err != nil {
				return "", err
			}
		}
		b.WriteString(s.describeMembership())
		return b.String(), nil
	default:
		return "", fmt.Errorf("unknown command %q", cmd)
	}
}

// timeArg parses key=<offset> from args, or returns def.
func timeArg(args []string, key string, def time.Time) (time.Time, error) {
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		if k != key {
			return time.Time{}, fmt.Errorf("unknown argument %q", a)
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			return time.Time{}, err
		}
		def = epoch.Add(d)
	}
	return def, nil
}

// describeMembers prints the members in ID order with their status.
func describeMembers(in *Input) string {
	var parts []string
	for _, id := range slices.Sorted(maps.Keys(in.Members)) {
		m := in.Members[id]
		switch m.Status {
		case Alive:
			parts = append(parts, id)
		case Failed:
			parts = append(parts, fmt.Sprintf("%s(failed since %s)", id, m.FailedSince.Sub(epoch)))
		default:
			parts = append(parts, fmt.Sprintf("%s(%s)", id, m.Status))
		}
	}
	return "members: " + strings.Join(parts, " ")
}

// describeConfirmed prints the confirmations held, by replica.
func describeConfirmed(in *Input) string {
	if len(in.Confirmed) == 0 {
		return "confirmed: none"
	}
	var parts []string
	for _, rid := range slices.Sorted(maps.Keys(in.Confirmed)) {
		parts = append(parts, fmt.Sprintf("%d@%s", rid, in.Confirmed[rid].Sub(epoch)))
	}
	return "confirmed: " + strings.Join(parts, " ")
}

// describeAnswers prints this pass's failed confirmations.
func describeAnswers(in *Input) string {
	if len(in.Answers) == 0 {
		return "answers: none"
	}
	var parts []string
	for _, rid := range slices.Sorted(maps.Keys(in.Answers)) {
		parts = append(parts, fmt.Sprintf("%d=%s", rid, in.Answers[rid]))
	}
	return "answers: " + strings.Join(parts, " ")
}
