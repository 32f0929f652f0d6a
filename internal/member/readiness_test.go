package member

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// A full disk shows as "storage-full" only while the member is ready, and
// every change wakes WaitUntilReady's waiters.
func TestReadinessStorageFull(t *testing.T) {
	t.Parallel()
	var r readinessState
	r.setFull(true)
	p, _, changed := r.snapshot()
	require.Equal(t, Starting, p.String(), "not ready yet: starting wins")
	r.set(phaseReady, false)
	<-changed
	p, _, changed = r.snapshot()
	require.Equal(t, StorageFull, p.String())
	r.setFull(false)
	<-changed
	p, _, changed = r.snapshot()
	require.Equal(t, Ready, p.String())
	r.setFull(true)
	<-changed
	r.set(phaseStopped, true)
	p, sealed, _ := r.snapshot()
	require.True(t, sealed)
	require.Equal(t, Stopped, p.String())
}
