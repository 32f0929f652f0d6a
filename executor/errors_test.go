package executor_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/eleven-am/graft/executor"
)

func TestPermanent(t *testing.T) {
	t.Parallel()

	base := &codedError{code: 3}
	cases := []struct {
		name          string
		err           error
		wantPermanent bool
		wantText      string
	}{
		{name: "nil", err: executor.Permanent(nil)},
		{name: "plain error", err: base, wantText: "code 3"},
		{name: "marked", err: executor.Permanent(base), wantPermanent: true, wantText: "code 3"},
		{name: "marked twice", err: executor.Permanent(executor.Permanent(base)), wantPermanent: true, wantText: "code 3"},
		{name: "wrapped after marking", err: fmt.Errorf("charging: %w", executor.Permanent(base)), wantPermanent: true, wantText: "charging: code 3"},
		{name: "joined", err: errors.Join(errors.New("other"), executor.Permanent(base)), wantPermanent: true, wantText: "other\ncode 3"},
		{name: "sentinel", err: executor.ErrInvalidNode, wantText: "graft: invalid node"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.wantPermanent, executor.IsPermanent(tc.err))
			if tc.wantText == "" {
				require.NoError(t, tc.err)
				return
			}
			require.EqualError(t, tc.err, tc.wantText)
			if tc.err != base && tc.wantPermanent {
				require.ErrorIs(t, tc.err, base)
				ce, ok := errors.AsType[*codedError](tc.err)
				require.True(t, ok)
				require.Equal(t, 3, ce.code)
			}
		})
	}
}

func TestSentinels(t *testing.T) {
	t.Parallel()

	for _, err := range []error{executor.ErrInvalidNode, executor.ErrDuplicateNode, executor.ErrNodeNotFound, executor.ErrInvalidResult} {
		t.Run(err.Error(), func(t *testing.T) {
			t.Parallel()
			require.Regexp(t, `^graft: [a-z ]+$`, err.Error())
		})
	}
}

func TestErrorTypes(t *testing.T) {
	t.Parallel()

	cause := errors.New("json: boom")
	cases := []struct {
		name string
		err  error
		want string
	}{
		{name: "decode error with field", err: &executor.DecodeError{Node: "n", Param: "state", Field: "a.b", Err: cause},
			want: `graft: node "n": decoding state field "a.b": json: boom`},
		{name: "decode error without field", err: &executor.DecodeError{Node: "n", Param: "config", Err: cause},
			want: `graft: node "n": decoding config: json: boom`},
		{name: "panic error", err: &executor.PanicError{Node: "n", Value: 42, Stack: []byte("stack")},
			want: `graft: node "n": panic: 42`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.EqualError(t, tc.err, tc.want)
		})
	}
	require.ErrorIs(t, &executor.DecodeError{Err: cause}, cause)
}
