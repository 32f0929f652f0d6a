package executor_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/eleven-am/graft/executor"
)

// countNode increments the count field of its state.
type countNode struct{ name string }

func (n *countNode) GetName() string { return n.name }

func (n *countNode) Execute(state *testState) (*executor.NodeResult, error) {
	state.Count++
	return &executor.NodeResult{GlobalState: state}, nil
}

func TestRegistry(t *testing.T) {
	t.Parallel()

	t.Run("register, get and names", func(t *testing.T) {
		t.Parallel()
		r := executor.NewRegistry()
		require.Empty(t, r.Names())
		for _, name := range []string{"charlie", "alpha", "bravo"} {
			require.NoError(t, r.Register(&countNode{name: name}))
		}
		require.Equal(t, []string{"alpha", "bravo", "charlie"}, r.Names())

		n, ok := r.Get("bravo")
		require.True(t, ok)
		require.Equal(t, "bravo", n.Name())
		require.False(t, n.HasCanStart())

		_, ok = r.Get("delta")
		require.False(t, ok)
	})

	t.Run("duplicate name", func(t *testing.T) {
		t.Parallel()
		r := executor.NewRegistry()
		first := &countNode{name: "dup"}
		require.NoError(t, r.Register(first))
		err := r.Register(&countNode{name: "dup"})
		require.ErrorIs(t, err, executor.ErrDuplicateNode)
		require.NotErrorIs(t, err, executor.ErrInvalidNode)
		require.EqualError(t, err, `graft: node "dup": already registered`)

		err = r.Register(mixedShapes{})
		require.NoError(t, err)
		require.Equal(t, []string{"dup", "mixed-shapes"}, r.Names())
	})

	t.Run("unregister", func(t *testing.T) {
		t.Parallel()
		r := executor.NewRegistry()
		require.NoError(t, r.Register(&countNode{name: "a"}))
		require.NoError(t, r.Unregister("a"))
		_, ok := r.Get("a")
		require.False(t, ok)
		require.Empty(t, r.Names())

		err := r.Unregister("a")
		require.ErrorIs(t, err, executor.ErrNodeNotFound)
		require.EqualError(t, err, `graft: node "a": not registered`)

		require.NoError(t, r.Register(&countNode{name: "a"}), "a name can be reused after Unregister")
	})
}

func TestRegistryConcurrentUse(t *testing.T) {
	t.Parallel()

	const workers = 8
	const perWorker = 50
	r := executor.NewRegistry()
	require.NoError(t, r.Register(&countNode{name: "shared"}))
	shared, ok := r.Get("shared")
	require.True(t, ok)

	var wg sync.WaitGroup
	errs := make(chan error, workers*perWorker*4)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				name := fmt.Sprintf("w%d-n%d", w, i)
				if err := r.Register(&countNode{name: name}); err != nil {
					errs <- err
				}
				if err := r.Register(&countNode{name: "shared"}); err == nil {
					errs <- fmt.Errorf("duplicate %q accepted", "shared")
				}
				if _, ok := r.Get(name); !ok {
					errs <- fmt.Errorf("%s not found after Register", name)
				}
				_ = r.Names()
				if i%2 == 1 {
					if err := r.Unregister(name); err != nil {
						errs <- err
					}
				}
				out, err := shared.Execute(t.Context(), json.RawMessage(`{"count":1}`), nil)
				if err != nil {
					errs <- err
				} else if string(out.State) != `{"name":"","count":2}` {
					errs <- fmt.Errorf("shared state leaked between calls: %s", out.State)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Len(t, r.Names(), 1+workers*perWorker/2)
}
