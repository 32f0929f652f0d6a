package crdt

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestVersionOrder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		v, w Version
		want int
	}{
		{name: "equal", v: Version{2, 5}, w: Version{2, 5}, want: 0},
		{name: "counter", v: Version{2, 5}, w: Version{2, 6}, want: -1},
		{name: "incarnation beats counter", v: Version{3, 1}, w: Version{2, 900}, want: 1},
		{name: "zero first", v: Version{}, w: Version{0, 1}, want: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, tt.v.Compare(tt.w))
			require.Equal(t, -tt.want, tt.w.Compare(tt.v))
			require.Equal(t, tt.want < 0, tt.v.Less(tt.w))
		})
	}
	require.True(t, Version{}.IsZero())
	require.Equal(t, "3.7", Version{3, 7}.String())
}
