package engine

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/eleven-am/graft/executor"
	"github.com/eleven-am/graft/internal/wf"
	"github.com/stretchr/testify/require"
)

// okNode is a node that changes nothing.
type okNode struct{}

func (okNode) GetName() string { return "Ok" }

func (okNode) Execute(map[string]any) (*executor.NodeResult, error) { return nil, nil }

// deepJSON returns an object nested depth levels deep.
func deepJSON(depth int) json.RawMessage {
	return json.RawMessage(strings.Repeat(`{"a":`, depth-1) + `{}` + strings.Repeat(`}`, depth-1))
}

// A step whose state or next-node config nests deeper than wf.MaxDepth
// fails permanently with an error naming the limit; at the limit it commits.
func TestFinishOutputRefusesDeepJSON(t *testing.T) {
	t.Parallel()
	reg := executor.NewRegistry()
	require.NoError(t, reg.Register(okNode{}))
	e, err := New(testConfig(&recordingStore{}, reg, SystemClock{}))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, e.Stop(context.Background())) })

	over := wf.MaxDepth + 1
	tests := []struct {
		name string
		out  executor.Output
		want string // "" means accepted
	}{
		{"state at the limit", executor.Output{State: deepJSON(wf.MaxDepth)}, ""},
		{"config at the limit", executor.Output{Next: []executor.Next{{Node: "Ok", Config: deepJSON(wf.MaxDepth)}}}, ""},
		{"state over the limit", executor.Output{State: deepJSON(over)},
			`node "Deep": its state is nested 101 levels deep, over the limit of 100 (graft.MaxStateDepth)`},
		{"config over the limit", executor.Output{Next: []executor.Next{{Node: "Ok"}, {Node: "Ok", Config: deepJSON(over)}}},
			`node "Deep": NextNodes[1] ("Ok"): its config is nested 101 levels deep, over the limit of 100 (graft.MaxStateDepth)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := &wf.Command{}
			err := e.finishOutput(c, "Deep", json.RawMessage(`{}`), &tt.out)
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tt.want)
			require.True(t, executor.IsPermanent(err))
			var de *wf.DepthError
			require.ErrorAs(t, err, &de)
			require.Equal(t, over, de.Depth)
		})
	}
}
