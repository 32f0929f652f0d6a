// Package formation decides how a member that has no cluster yet becomes
// part of one: join a booted cluster, wait, or bootstrap a new one with a
// set of founders. Decide is a pure function of this member's founding rules
// and what gossip shows; the member's bootstrap loop calls it repeatedly and
// applies the answer.
package formation

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Mode says how a member picks the founding members of a new cluster.
type Mode int

const (
	// Count bootstraps once Want members with the same rules are seen (the
	// Want lowest node IDs found it); Cluster.ExpectedMembers gives it.
	Count Mode = iota
	// Listed bootstraps once every member of IDs is seen; a static
	// discovery list gives it (this member counted, listed or not).
	Listed
	// Elect waits for a booted cluster; once the wait is over, the member
	// with the lowest node ID among those seen founds one alone and the
	// others join it. mDNS and DNS discovery without ExpectedMembers give it.
	Elect
)

// String returns "count", "listed" or "elect".
func (m Mode) String() string {
	switch m {
	case Count:
		return "count"
	case Listed:
		return "listed"
	case Elect:
		return "elect"
	}
	return "mode(" + strconv.Itoa(int(m)) + ")"
}

// Rules are one member's founding rules. Members bootstrap together only
// when their rules agree (see Fingerprint), so two members configured with
// different static lists or ExpectedMembers never found two clusters that
// each count the other.
type Rules struct {
	Mode Mode
	// Want is the number of founders (Count).
	Want int
	// IDs are the founders' node IDs, sorted, this member's included (Listed).
	IDs []string
}

// Fingerprint is a short text that is equal for equal rules; members
// publish it so that others can tell whether they agree.
func (r Rules) Fingerprint() string {
	switch r.Mode {
	case Count:
		return "count:" + strconv.Itoa(r.Want)
	case Listed:
		h := sha256.Sum256([]byte(strings.Join(r.IDs, "\x00")))
		return "listed:" + hex.EncodeToString(h[:6])
	}
	return "elect"
}

// Peer is a member gossip shows alive, as formation sees it.
type Peer struct {
	ID string
	// Cluster is the ID of the cluster it belongs to; "" until it has
	// bootstrapped or joined one.
	Cluster string
	// Seed is the random cluster ID it proposes should it found a cluster.
	Seed string
	// Rules is the fingerprint of its founding rules.
	Rules string
}

// Action is what a member should do next.
type Action int

const (
	// Wait means look again later.
	Wait Action = iota
	// Join means join the running cluster Decision.Cluster.
	Join
	// Bootstrap means found cluster Decision.Cluster with Decision.Founders.
	Bootstrap
	// Fail means this member cannot take part; Decision.Reason says why.
	Fail
)

// String returns the action's name.
func (a Action) String() string {
	switch a {
	case Wait:
		return "wait"
	case Join:
		return "join"
	case Bootstrap:
		return "bootstrap"
	case Fail:
		return "fail"
	}
	return "action(" + strconv.Itoa(int(a)) + ")"
}

// Decision is Decide's answer.
type Decision struct {
	Action Action
	// Cluster is the cluster to join, or the ID of the one to bootstrap.
	Cluster string
	// Founders are the node IDs that bootstrap together, sorted (Bootstrap).
	Founders []string
	// Reason says why the member waits or fails, for its log.
	Reason string
	// Others lists the IDs of other booted clusters seen (Join picks one
	// of several: the one with the most members, then the lowest ID).
	Others []string
}

// Input is what Decide looks at.
type Input struct {
	// Self is this member; it must be among Seen.
	Self Peer
	// Rules are this member's founding rules.
	Rules Rules
	// Seen are the members gossip shows alive (and admitted), Self included.
	Seen []Peer
	// Waited reports whether Cluster.BootstrapWait has passed since this
	// member started looking (Elect only).
	Waited bool
}

// Decide returns what a member without a cluster should do: join a booted
// cluster if one is seen; otherwise bootstrap when its rules are met by
// members that share them, or wait.
func Decide(in Input) Decision {
	if d, ok := join(in); ok {
		return d
	}
	byID := map[string]Peer{}
	for _, p := range in.Seen {
		if p.Cluster == "" {
			byID[p.ID] = p
		}
	}
	byID[in.Self.ID] = in.Self
	fp := in.Rules.Fingerprint()
	var founders []string
	switch in.Rules.Mode {
	case Listed:
		var missing, differ []string
		for _, id := range in.Rules.IDs {
			p, ok := byID[id]
			switch {
			case !ok:
				missing = append(missing, id)
			case p.Rules != fp:
				differ = append(differ, id)
			}
		}
		if len(missing) > 0 {
			return Decision{Action: Wait, Reason: fmt.Sprintf("waiting for founding members %v (seen %d of %d)", missing, len(in.Rules.IDs)-len(missing), len(in.Rules.IDs))}
		}
		if len(differ) > 0 {
			return Decision{Action: Wait, Reason: fmt.Sprintf("founding members %v are configured with another static list or Cluster.ExpectedMembers; every founding member needs the same", differ)}
		}
		founders = slices.Clone(in.Rules.IDs)
	case Count:
		var same, differ []string
		for id, p := range byID {
			if p.Rules == fp {
				same = append(same, id)
			} else {
				differ = append(differ, id)
			}
		}
		slices.Sort(same)
		slices.Sort(differ)
		if len(same) < in.Rules.Want {
			reason := fmt.Sprintf("waiting for Cluster.ExpectedMembers (%d) members, seen %d", in.Rules.Want, len(same))
			if len(differ) > 0 {
				reason += fmt.Sprintf("; members %v have other founding rules", differ)
			}
			return Decision{Action: Wait, Reason: reason}
		}
		founders = same[:in.Rules.Want]
		if !slices.Contains(founders, in.Self.ID) {
			return Decision{Action: Fail, Reason: fmt.Sprintf("this member is not among the first %d members %v (start exactly Cluster.ExpectedMembers members)", in.Rules.Want, founders)}
		}
	case Elect:
		if !in.Waited {
			return Decision{Action: Wait, Reason: "looking for a running cluster (Cluster.BootstrapWait)"}
		}
		founder := in.Self.ID
		for id, p := range byID {
			if p.Rules == fp && id < founder {
				founder = id
			}
		}
		if founder != in.Self.ID {
			return Decision{Action: Wait, Reason: fmt.Sprintf("waiting for %s (lowest node ID seen) to found the cluster", founder)}
		}
		founders = []string{in.Self.ID}
	default:
		return Decision{Action: Fail, Reason: "unknown founding mode " + in.Rules.Mode.String()}
	}
	// The cluster ID is the lowest founder's seed: every founder sees it.
	seed := byID[founders[0]].Seed
	if seed == "" {
		return Decision{Action: Wait, Reason: fmt.Sprintf("founding member %s publishes no cluster ID seed yet", founders[0])}
	}
	return Decision{Action: Bootstrap, Cluster: seed, Founders: founders}
}

// join picks the booted cluster to join, if any is seen: the one with the
// most members seen, then the lowest ID.
func join(in Input) (Decision, bool) {
	count := map[string]int{}
	for _, p := range in.Seen {
		if p.Cluster != "" && p.ID != in.Self.ID {
			count[p.Cluster]++
		}
	}
	if len(count) == 0 {
		return Decision{}, false
	}
	ids := make([]string, 0, len(count))
	for id := range count {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b string) int {
		return cmp.Or(cmp.Compare(count[b], count[a]), cmp.Compare(a, b))
	})
	return Decision{Action: Join, Cluster: ids[0], Others: ids[1:]}, true
}

// ListedPeer is a peer of a static discovery list: its node ID (empty if
// the list gives none) and its Raft address (host:port).
type ListedPeer struct {
	ID, RaftAddr string
}

// RulesFor returns the founding rules of member self (Raft address
// bindAddr): Count of expected if that is above zero; otherwise, with a
// static list, the listed members with self (a peer listed without ID
// counts by its address, Count then); otherwise Elect among the members
// mDNS or DNS finds.
func RulesFor(self, bindAddr string, expected int, static []ListedPeer) Rules {
	if expected > 0 {
		return Rules{Mode: Count, Want: expected}
	}
	if len(static) == 0 {
		return Rules{Mode: Elect}
	}
	ids := map[string]bool{self: true}
	anonymous := map[string]bool{}
	for _, p := range static {
		switch {
		case p.ID != "":
			ids[p.ID] = true
		case p.RaftAddr != bindAddr:
			anonymous[p.RaftAddr] = true
		}
	}
	if len(anonymous) > 0 {
		return Rules{Mode: Count, Want: len(ids) + len(anonymous)}
	}
	list := make([]string, 0, len(ids))
	for id := range ids {
		list = append(list, id)
	}
	slices.Sort(list)
	return Rules{Mode: Listed, IDs: list}
}
