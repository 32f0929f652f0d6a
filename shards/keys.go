package shards

import "encoding/binary"

// Key layout in the member's Pebble database:
//
//	<shardID:8 BE> 0x00 "applied"   -> applied raft index (8 bytes BE)
//	<shardID:8 BE> 'd' <logic key>  -> Logic's keyspace
//
// Sub-prefixes keep Logic keys from colliding with bookkeeping keys.
const (
	shardPrefixLen = 8
	metaSubPrefix  = 0x00
	dataSubPrefix  = 'd'
	// endSubPrefix bounds every sub-prefix of a shard; no sub-prefix uses it.
	endSubPrefix = 0xff
)

func shardPrefix(shardID uint64, sub byte) []byte {
	p := make([]byte, shardPrefixLen+1, shardPrefixLen+16)
	binary.BigEndian.PutUint64(p, shardID)
	p[shardPrefixLen] = sub
	return p
}

func appliedKey(shardID uint64) []byte {
	return append(shardPrefix(shardID, metaSubPrefix), "applied"...)
}

// dataKey returns the absolute key of a Logic key.
func dataKey(shardID uint64, key []byte) []byte {
	p := shardPrefix(shardID, dataSubPrefix)
	return append(p, key...)
}

// shardRange returns [start, end) covering every key of the shard.
func shardRange(shardID uint64) (start, end []byte) {
	return shardPrefix(shardID, metaSubPrefix), shardPrefix(shardID, endSubPrefix)
}

func encodeUint64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}
