//go:build linux

package graft_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/eleven-am/graft"
	"github.com/stretchr/testify/require"
)

// diskChildEnv names the data directory's file system when the test binary
// runs as the child of TestAbruptlyFullDiskEndsTheProcess.
const diskChildEnv = "GRAFT_TEST_FULL_DISK_CHILD"

// diskChildAddrEnv is the child's bind address: the member restarted on
// its data directory must keep it (Dragonboat records its owner).
const diskChildAddrEnv = "GRAFT_TEST_FULL_DISK_CHILD_ADDR"

// fullDiskChild is the body of TestAbruptlyFullDiskEndsTheProcess's child: a lone member on the file system at
// dir runs workflows, then something else fills the file system to the
// last byte while starts go on. It prints what it sees and returns if the
// process survives.
func fullDiskChild(t *testing.T, dir, addr string) {
	b := setup(t, func(c *graft.Config) { c.DataDir, c.BindAddr = filepath.Join(dir, "data"), addr }, func(m *graft.Manager) {
		require.NoError(t, m.RegisterNode(&seqNode{"A", ""}))
	})
	for i := range 20 {
		id := fmt.Sprint("before-", i)
		require.NoError(t, b.m.StartWorkflow(graft.WorkflowTrigger{WorkflowID: id, InitialNodes: []graft.NodeConfig{{Name: "A"}}}))
		waitStatus(t, b.m, id, graft.WorkflowStateCompleted)
	}
	f, err := os.Create(filepath.Join(dir, "ballast"))
	require.NoError(t, err)
	chunk := make([]byte, 1<<20)
	for {
		if _, err := f.Write(chunk); err != nil {
			fmt.Printf("CHILD ballast write stopped: %v\n", err)
			break
		}
	}
	for len(chunk) > 1 {
		chunk = chunk[:len(chunk)/2]
		for {
			if _, err := f.Write(chunk); err != nil {
				break
			}
		}
	}
	fmt.Printf("CHILD disk filled: %d bytes free\n", statfsFree(t, dir))
	var accepted, full, other int
	var others, acceptedIDs []string
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := b.m.StartWorkflowContext(ctx, graft.WorkflowTrigger{WorkflowID: fmt.Sprint("after-", i), InitialNodes: []graft.NodeConfig{{Name: "A"}}})
		cancel()
		switch {
		case err == nil:
			accepted++
			acceptedIDs = append(acceptedIDs, fmt.Sprint("after-", i))
		case errors.Is(err, graft.ErrStorageFull):
			full++
		default:
			other++
			if len(others) < 3 {
				others = append(others, err.Error())
			}
		}
	}
	fmt.Printf("CHILD after the fill: accepted=%d storage_full=%d other=%d %q\n", accepted, full, other, others)
	fmt.Printf("CHILD accepted after the fill: %s\n", strings.Join(acceptedIDs, " "))
	require.NoError(t, f.Close())
}

// A disk filled abruptly by someone else (not Graft's own writes, which
// the guard stops at Expert.MinFreeDiskBytes) either ends the member's
// process or gets every new workflow refused, depending on whether a write
// was in flight when space ran out: a write that fails is fatal to Pebble
// (its commit panics on a WAL write error) and to Dragonboat (it panics on
// a failed Raft log write). Both were seen: once "panic: write
// .../data/state/000004.log: no space left on device" from
// pebble.(*DB).commitWrite under the state machine's Update; once no write
// failed and all 587,936 starts in the 5s after the fill were refused with
// ErrStorageFull. The test runs the member in a child process (this test
// binary again) on a 100 MiB tmpfs, fills the tmpfs from the child, and
// accepts either outcome, nothing else; then, with the space freed, a
// member restarted on the same data directory has every workflow
// acknowledged before the fill completed: nothing acknowledged was lost
// or corrupted.
func TestAbruptlyFullDiskEndsTheProcess(t *testing.T) {
	if dir := os.Getenv(diskChildEnv); dir != "" {
		fullDiskChild(t, dir, os.Getenv(diskChildAddrEnv))
		return
	}
	if testing.Short() {
		t.Skip("runs a member in a child process until its disk fills")
	}
	fs := mountSmallFS(t, "100m")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run", "^TestAbruptlyFullDiskEndsTheProcess$", "-test.v")
	addr := freeAddr(t)
	cmd.Env = append(os.Environ(), diskChildEnv+"="+fs, diskChildAddrEnv+"="+addr)
	out, err := cmd.CombinedOutput()
	t.Logf("child output (last 3000 bytes): %s", tail(out, 3000))
	require.Contains(t, string(out), "CHILD disk filled")
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		panicked := regexp.MustCompile(`panic: .*no space left on device.*`).Find(out)
		require.NotNil(t, panicked, "the child died, but not of ENOSPC")
		t.Logf("the member's process ended on the full disk: %s", panicked)
	} else {
		require.NoError(t, err)
		t.Log("the member survived the full disk: no write failed")
		// Starts in the moment before the guard's next reading may still
		// be accepted (Pebble writes into log space it reserved earlier);
		// after it, every start is refused, and nothing fails otherwise.
		require.Regexp(t, `CHILD after the fill: accepted=[0-9]+ storage_full=[1-9][0-9]* other=0 `, string(out))
	}
	var acceptedAfter []string
	if m := regexp.MustCompile(`CHILD accepted after the fill: (.*)\n`).FindSubmatch(out); m != nil {
		acceptedAfter = strings.Fields(string(m[1]))
	}

	require.NoError(t, os.Remove(filepath.Join(fs, "ballast")))
	b := setup(t, func(c *graft.Config) { c.DataDir, c.BindAddr = filepath.Join(fs, "data"), addr }, func(m *graft.Manager) {
		require.NoError(t, m.RegisterNode(&seqNode{"A", ""}))
	})
	for i := range 20 {
		waitStatus(t, b.m, fmt.Sprint("before-", i), graft.WorkflowStateCompleted)
	}
	for _, id := range acceptedAfter { // acknowledged on the full disk
		waitStatus(t, b.m, id, graft.WorkflowStateCompleted)
	}
	t.Logf("%d workflows acknowledged after the fill completed after the restart", len(acceptedAfter))
}

// tail returns the last n bytes of b.
func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
