package main_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/eleven-am/graft"
	"github.com/eleven-am/graft/internal/certs"
	"github.com/eleven-am/graft/internal/operator"
	"github.com/stretchr/testify/require"
)

// writeOperator issues a certificate for operator name with the CA in
// dir and writes it as NAME.crt and NAME.key; it returns their paths.
func writeOperator(t *testing.T, dir, name string) (string, string) {
	t.Helper()
	ca, err := certs.LoadAuthority(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem"))
	require.NoError(t, err)
	now := time.Now()
	c, k, err := ca.IssueOperator(name, now.Add(-time.Minute), now.Add(time.Hour))
	require.NoError(t, err)
	crt, key := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	require.NoError(t, os.WriteFile(crt, c, 0o600))
	require.NoError(t, os.WriteFile(key, k, 0o600))
	return crt, key
}

func TestCLIWithTLS(t *testing.T) {
	bin := buildCLI(t)
	dir := t.TempDir()
	files, err := certs.Generate(dir, []string{"n1", "n9"}, nil, time.Hour)
	require.NoError(t, err)
	op, err := certs.GenerateOperator(dir, "ops", time.Hour)
	require.NoError(t, err)
	eveCrt, eveKey := writeOperator(t, dir, "eve")
	strangers := t.TempDir()
	other, err := certs.Generate(strangers, []string{"n1"}, nil, time.Hour)
	require.NoError(t, err)
	strangerOp, err := certs.GenerateOperator(strangers, "ops", time.Hour)
	require.NoError(t, err)

	b := startMember(t, func(c *graft.Config) {
		c.TLS = graft.TLSConfig{CAFile: files["n1"].CA, CertFile: files["n1"].Cert, KeyFile: files["n1"].Key}
		c.Cluster.Key = []byte("0123456789abcdef")
		c.Cluster.Policy = graft.ClusterPolicyStrict
		c.Cluster.AllowedNodes = []string{"n1"}
		c.Operators.Names = []string{"ops"}
	})
	b.start(t, "tls-1", "Ok", "acme")
	b.wait(t, "tls-1", graft.WorkflowStateCompleted)
	as := func(crt, key string) *cli {
		return &cli{t: t, bin: bin, args: []string{"--addr", b.addr, "--ca", files["n1"].CA, "--cert", crt, "--key", key}}
	}

	t.Run("listed operator", func(t *testing.T) {
		c := as(op.Cert, op.Key)
		var ans operator.MembersAnswer
		c.okJSON(&ans, "members")
		require.Equal(t, "n1", ans.NodeID)
		var w operator.Workflow
		c.okJSON(&w, "workflows", "show", "tls-1")
		require.Equal(t, "completed", w.Status)
	})

	t.Run("member certificate", func(t *testing.T) {
		require.Contains(t, as(files["n1"].Cert, files["n1"].Key).ok("workflows", "list"), "tls-1")
	})

	t.Run("environment", func(t *testing.T) {
		c := &cli{t: t, bin: bin}
		c.args = nil
		cmdOut, errOut, code := c.runEnv([]string{"GRAFT_ADDR=" + b.addr, "GRAFT_CA=" + op.CA, "GRAFT_CERT=" + op.Cert, "GRAFT_KEY=" + op.Key}, "shards")
		require.Zero(t, code, errOut)
		require.Contains(t, cmdOut, "replica 1 (leader)")
	})

	t.Run("refused", func(t *testing.T) {
		// An operator the strict policy does not list.
		errOut := as(eveCrt, eveKey).fails("members")
		require.Contains(t, errOut, "graft: member at "+b.addr+" refused the call: ")
		require.Contains(t, errOut, `operator "eve": not listed in Operators.Names (policy strict)`)
		// A member certificate the strict policy does not list: refused
		// at the handshake.
		require.Contains(t, as(files["n9"].Cert, files["n9"].Key).fails("members"), "cannot reach member at "+b.addr)
		// No TLS at all, and an operator of another CA.
		require.Contains(t, (&cli{t: t, bin: bin, args: []string{"--addr", b.addr}}).fails("members"), "cannot reach member at "+b.addr)
		stranger := &cli{t: t, bin: bin, args: []string{"--addr", b.addr, "--ca", other["n1"].CA, "--cert", strangerOp.Cert, "--key", strangerOp.Key}}
		require.Contains(t, stranger.fails("members"), "cannot reach member at "+b.addr)
		// The member's CA with an operator of another: the member refuses
		// the handshake.
		mixed := &cli{t: t, bin: bin, args: []string{"--addr", b.addr, "--ca", files["n1"].CA, "--cert", strangerOp.Cert, "--key", strangerOp.Key}}
		require.Contains(t, mixed.fails("members"), "cannot reach member at "+b.addr)
		// TLS flags incomplete.
		half := &cli{t: t, bin: bin, args: []string{"--addr", b.addr, "--ca", files["n1"].CA}}
		require.Contains(t, half.fails("members"), "TLS needs --ca, --cert and --key")
	})
}
