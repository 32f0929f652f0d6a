package ring_test

import (
	"fmt"

	"github.com/eleven-am/graft/ring"
)

func ExamplePlace() {
	cfg := ring.Config{ShardCount: 4} // RF 3, Load 1.25 by default
	three, err := ring.Place(cfg, []ring.Member{{ID: "n1"}, {ID: "n2"}, {ID: "n3"}})
	if err != nil {
		panic(err)
	}
	fmt.Println("shard of wf-1:", ring.ShardFor("wf-1", 4))
	fmt.Println("replicas of shard 1:", three.Replicas(1))

	four, err := ring.Place(cfg, []ring.Member{{ID: "n4"}, {ID: "n3"}, {ID: "n2"}, {ID: "n1"}})
	if err != nil {
		panic(err)
	}
	for _, m := range ring.Diff(three, four) {
		fmt.Printf("shard %d: add %v, remove %v\n", m.Shard, m.Add, m.Remove)
	}
	fmt.Println("n4 leads:", four.LeadersOf("n4"))
	// Output:
	// shard of wf-1: 3
	// replicas of shard 1: [n3 n2 n1]
	// shard 1: add [n4], remove [n2]
	// shard 2: add [n4], remove [n2]
	// shard 3: add [n4], remove [n3]
	// n4 leads: [2]
}
