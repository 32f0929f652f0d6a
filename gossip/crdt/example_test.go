package crdt_test

import (
	"fmt"
	"time"

	"github.com/eleven-am/graft/gossip/crdt"
)

// Two members publish their records and counters, gossip their own updates
// as deltas, and repair the rest with one push-pull anti-entropy exchange.
func Example() {
	a, b := crdt.NewState(), crdt.NewState()

	// Each member writes only its own entry, at its persisted incarnation.
	if _, err := a.SetRecord("node-a", 1, crdt.MemberRecord{NodeTypes: []string{"fetch"}, WorkerCapacity: 8}); err != nil {
		panic(err)
	}
	if _, err := a.Add("node-a", 1, crdt.WorkflowsCompleted, 3); err != nil {
		panic(err)
	}
	if _, err := b.Add("node-b", 4, crdt.WorkflowsCompleted, 2); err != nil {
		panic(err)
	}

	// A broadcast of a's own entry reaches b (on the wire: Encode, Decode).
	delta, err := crdt.Decode(a.Subset("node-a").Encode())
	if err != nil {
		panic(err)
	}
	if err := b.Merge(delta); err != nil {
		panic(err)
	}

	// Push-pull: each side sends its digest and merges what the other lacks.
	if err := a.Merge(b.DeltaFor(a.Digest(), 0)); err != nil {
		panic(err)
	}
	if err := b.Merge(a.DeltaFor(b.Digest(), 0)); err != nil {
		panic(err)
	}
	fmt.Println("converged:", a.Equal(b))
	fmt.Println("members:", a.Members())
	fmt.Println("completed:", a.Total(crdt.WorkflowsCompleted))

	// node-b leaves; once the tombstone is older than the horizon it is
	// collected, and its counts leave the totals.
	left := time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)
	if _, err := b.Leave("node-b", left); err != nil {
		panic(err)
	}
	fmt.Println("after leave:", b.Members())
	fmt.Println("collected:", b.Collect(left.Add(25*time.Hour), 24*time.Hour))
	// Output:
	// converged: true
	// members: [node-a node-b]
	// completed: 5
	// after leave: [node-a]
	// collected: [node-b]
}
