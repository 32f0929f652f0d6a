// Package hostile builds hostile inputs for Graft's three ports — memberlist
// gossip messages, Raft transport frames, member RPC calls — for tests and
// the chaos harness.
//
// The encoders here are written from the wire formats, independently of the
// code that reads them (gossip's guard, shards' frame reader, internal/rpc),
// so that a mistake in a reader is not mirrored by the probes. Nothing here
// holds state: every builder takes what it needs, and randomness comes from
// the caller's seeded *rand.Rand.
package hostile

import (
	"fmt"
	"math/rand/v2"
)

// Probe is one hostile input: the bytes to send over one connection (or in
// one datagram) and a name for logs and failure messages.
type Probe struct {
	Name  string
	Bytes []byte
}

// RandomBytes returns n bytes drawn from rng.
func RandomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// RandomProbes returns count probes of prefix followed by random bytes, each
// of 1 to maxLen random bytes, named name and their index.
func RandomProbes(rng *rand.Rand, name string, count, maxLen int, prefix []byte) []Probe {
	out := make([]Probe, count)
	for i := range out {
		b := append([]byte(nil), prefix...)
		out[i] = Probe{Name: fmt.Sprintf("%s %d", name, i), Bytes: append(b, RandomBytes(rng, 1+rng.IntN(maxLen))...)}
	}
	return out
}

// Truncations returns p cut short: up to most proper prefixes of p.Bytes
// (of lengths 1 to len-1), evenly spaced, each named after p and its length.
func Truncations(p Probe, most int) []Probe {
	n := len(p.Bytes)
	if n < 2 || most < 1 {
		return nil
	}
	step := max(1, (n-1)/most)
	var out []Probe
	for cut := 1; cut < n && len(out) < most; cut += step {
		out = append(out, Probe{Name: fmt.Sprintf("%s, first %d of %d bytes", p.Name, cut, n), Bytes: p.Bytes[:cut:cut]})
	}
	return out
}
