package member

import "testing"

// A member's claims are held while it is alive in the run that made them;
// a member gossip sees alive but in a newer run (killed and restarted
// before gossip saw it dead) holds none of its earlier run's claims.
func TestRunAlive(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name             string
		alive            bool
		current, claimed string
		want             bool
	}{
		{"alive, same run", true, "a1", "a1", true},
		{"alive, restarted since the claim", true, "b2", "a1", false},
		{"not alive", false, "a1", "a1", false},
		{"not alive, nothing published", false, "", "a1", false},
		{"alive, publishes no incarnation (an older member)", true, "", "a1", true},
		{"alive, claim without incarnation", true, "a1", "", true},
	}
	for _, tt := range tests {
		if got := runAlive(tt.alive, tt.current, tt.claimed); got != tt.want {
			t.Errorf("%s: runAlive(%v, %q, %q) = %v, want %v", tt.name, tt.alive, tt.current, tt.claimed, got, tt.want)
		}
	}
}
