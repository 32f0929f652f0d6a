package ring

import "hash/fnv"

// ShardFor returns the shard (1..shardCount) that holds workflowID. Shard IDs
// start at 1 because Dragonboat reserves 0. shardCount must be positive.
func ShardFor(workflowID string, shardCount uint64) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(workflowID))
	return h.Sum64()%shardCount + 1
}
