package ring

// hasher is the hash every member uses to build the ring: 64-bit FNV-1a
// followed by the MurmurHash3 finaliser, which spreads FNV's weak low bits
// over the whole word (member names such as "n1", "n2" differ in one byte).
//
// It is part of the cluster protocol: changing it, or any of the placement
// constants, moves shards between members running different versions.
type hasher struct{}

// Sum64 implements consistent.Hasher.
func (hasher) Sum64(b []byte) uint64 {
	const (
		offset64 = 14695981039346656037
		prime64  = 1099511628211
	)
	h := uint64(offset64)
	for _, c := range b {
		h ^= uint64(c)
		h *= prime64
	}
	return fmix64(h)
}

// fmix64 is MurmurHash3's 64-bit finaliser.
func fmix64(k uint64) uint64 {
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	k *= 0xc4ceb9fe1a85ec53
	k ^= k >> 33
	return k
}
