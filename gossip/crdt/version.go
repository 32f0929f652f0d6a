package crdt

import "fmt"

// Version orders the updates of one member. Versions compare
// lexicographically: Incarnation first, then Counter. A member increments
// Incarnation on every restart (the caller persists it) and Counter on every
// local update within an incarnation, so a correct member never issues the
// same Version twice and no wall clock is ever consulted to break a tie.
//
// The zero Version is "nothing yet"; every stored record has Counter >= 1.
type Version struct {
	// Incarnation counts the member's restarts.
	Incarnation uint64
	// Counter counts local updates within Incarnation; it starts at 1.
	Counter uint64
}

// Compare returns -1 if v orders before w, +1 if after, 0 if equal.
func (v Version) Compare(w Version) int {
	switch {
	case v.Incarnation < w.Incarnation:
		return -1
	case v.Incarnation > w.Incarnation:
		return 1
	case v.Counter < w.Counter:
		return -1
	case v.Counter > w.Counter:
		return 1
	}
	return 0
}

// Less reports whether v orders before w.
func (v Version) Less(w Version) bool { return v.Compare(w) < 0 }

// IsZero reports whether v is the zero Version.
func (v Version) IsZero() bool { return v == Version{} }

// String formats v as "incarnation.counter".
func (v Version) String() string { return fmt.Sprintf("%d.%d", v.Incarnation, v.Counter) }
