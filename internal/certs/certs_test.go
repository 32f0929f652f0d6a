package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// handshake runs one TLS handshake between a client and a server config
// over loopback and returns the node IDs each side saw, or the errors.
func handshake(t *testing.T, server, client *tls.Config) (serverSaw, clientSaw string, serverErr, clientErr error) {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", server)
	require.NoError(t, err)
	defer l.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := l.Accept()
		if err != nil {
			serverErr = err
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		if serverErr = tc.Handshake(); serverErr == nil {
			serverSaw = PeerID(tc.ConnectionState())
		}
	}()
	c, err := tls.Dial("tcp", l.Addr().String(), client)
	if err == nil {
		clientSaw = PeerID(c.ConnectionState())
		// TLS 1.3 reports the server's refusal of the client certificate
		// on the first read.
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, rerr := c.Read(make([]byte, 1))
		if rerr != nil && !errors.Is(rerr, os.ErrDeadlineExceeded) && rerr.Error() != "EOF" {
			clientErr = rerr
		}
		_ = c.Close()
	} else {
		clientErr = err
	}
	<-done
	return serverSaw, clientSaw, serverErr, clientErr
}

func TestMutualTLSBindsNodeIDs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	files, err := Generate(dir, []string{"n1", "n2", "n3"}, nil, time.Hour)
	require.NoError(t, err)
	load := func(id string, revoked ...string) *Source {
		s, err := Load(files[id], revoked, nil)
		require.NoError(t, err)
		require.Equal(t, id, s.ID())
		return s
	}
	n1, n2 := load("n1"), load("n2")
	allowN2 := func(id string, _ *x509.Certificate) error {
		if id != "n2" {
			return fmt.Errorf("node %q is not allowed", id)
		}
		return nil
	}

	t.Run("members see each other's IDs", func(t *testing.T) {
		s, c, serr, cerr := handshake(t, n1.ServerConfig(nil), n2.ClientConfig(nil))
		require.NoError(t, serr)
		require.NoError(t, cerr)
		require.Equal(t, "n2", s)
		require.Equal(t, "n1", c)
	})
	t.Run("a check refuses an unlisted ID with a valid certificate", func(t *testing.T) {
		_, _, serr, _ := handshake(t, n1.ServerConfig(allowN2), load("n3").ClientConfig(nil))
		require.ErrorContains(t, serr, `node "n3" is not allowed`)
	})
	t.Run("a client without a certificate is refused", func(t *testing.T) {
		_, _, serr, _ := handshake(t, n1.ServerConfig(nil), &tls.Config{InsecureSkipVerify: true})
		require.Error(t, serr)
	})
	t.Run("a certificate from another CA is refused both ways", func(t *testing.T) {
		other, err := Generate(t.TempDir(), []string{"n2"}, nil, time.Hour)
		require.NoError(t, err)
		stranger, err := Load(other["n2"], nil, nil)
		require.NoError(t, err)
		// A stranger that accepts any server is still refused by the member.
		lax := stranger.ClientConfig(nil)
		lax.VerifyPeerCertificate = nil
		_, _, serr, _ := handshake(t, n1.ServerConfig(nil), lax)
		require.ErrorContains(t, serr, "not valid for this cluster")
		// A member dialing a stranger refuses it.
		_, _, _, cerr := handshake(t, stranger.ServerConfig(nil), n1.ClientConfig(nil))
		require.ErrorContains(t, cerr, "not valid for this cluster")
	})
	t.Run("a revoked certificate is refused", func(t *testing.T) {
		serial := n2.cert.Leaf.SerialNumber.Text(16)
		revoking := load("n1", serial)
		_, _, serr, _ := handshake(t, revoking.ServerConfig(nil), n2.ClientConfig(nil))
		require.ErrorContains(t, serr, "revoked")
	})
	t.Run("an expired certificate is refused", func(t *testing.T) {
		clk := &clock{now: time.Now().Add(2 * time.Hour)} // past every certificate's NotAfter
		late, err := Load(files["n1"], nil, clk.Now)
		require.NoError(t, err)
		_, _, serr, _ := handshake(t, late.ServerConfig(nil), n2.ClientConfig(nil))
		require.ErrorContains(t, serr, "expired")
	})
}

func TestLoadRefusesBadFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	files, err := Generate(dir, []string{"n1"}, nil, time.Hour)
	require.NoError(t, err)
	_, err = Load(Files{CA: files["n1"].CA}, nil, nil)
	require.ErrorContains(t, err, "needs a CA file, a certificate file and a key file")
	bad := filepath.Join(dir, "bad.pem")
	require.NoError(t, os.WriteFile(bad, []byte("not pem"), 0o600))
	_, err = Load(Files{CA: bad, Cert: files["n1"].Cert, Key: files["n1"].Key}, nil, nil)
	require.ErrorContains(t, err, "holds no PEM certificate")
	_, err = Load(Files{CA: files["n1"].CA, Cert: files["n1"].Cert, Key: bad}, nil, nil)
	require.ErrorContains(t, err, "loading certificate")
	_, err = Load(files["n1"], []string{"zz"}, nil)
	require.ErrorContains(t, err, `revoked serial "zz"`)
}

// A certificate replaced on disk is used for new handshakes once the
// reload interval passed, without a restart.
func TestCertificatesRotateFromDisk(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	files, err := Generate(dir, []string{"n1", "n2"}, nil, time.Hour)
	require.NoError(t, err)
	clk := &clock{now: time.Now()}
	n1, err := Load(files["n1"], nil, clk.Now)
	require.NoError(t, err)
	first := n1.cert.Leaf.SerialNumber

	// Re-issue n1's certificate from the same CA and write it over the old.
	auth, err := LoadAuthority(files["n1"].CA, filepath.Join(dir, "ca-key.pem"))
	require.NoError(t, err)
	c, k, err := auth.Issue("n1", nil, time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(files["n1"].Cert, c, 0o600))
	require.NoError(t, os.WriteFile(files["n1"].Key, k, 0o600))

	cur, _ := n1.current()
	require.Equal(t, first, cur.Leaf.SerialNumber, "reloaded before the interval")
	clk.add(2 * reloadEvery)
	cur, _ = n1.current()
	require.NotEqual(t, first, cur.Leaf.SerialNumber, "not reloaded after the interval")

	n2, err := Load(files["n2"], nil, nil)
	require.NoError(t, err)
	s, _, serr, cerr := handshake(t, n2.ServerConfig(nil), n1.ClientConfig(nil))
	require.NoError(t, serr)
	require.NoError(t, cerr)
	require.Equal(t, "n1", s)

	// A broken file on disk keeps the last good material.
	require.NoError(t, os.WriteFile(files["n1"].Key, []byte("garbage"), 0o600))
	clk.add(2 * reloadEvery)
	still, _ := n1.current()
	require.Equal(t, cur.Leaf.SerialNumber, still.Leaf.SerialNumber)
}

// An operator's certificate names an operator and no node, even when its
// common name is a node ID; it completes a handshake with a listener
// whose check admits it, never with one that wants a node.
func TestOperatorCertificates(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	files, err := Generate(dir, []string{"n1"}, nil, time.Hour)
	require.NoError(t, err)
	op, err := GenerateOperator(dir, "n1", time.Hour) // posing as member n1
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "operator.crt"), op.Cert)
	require.Equal(t, filepath.Join(dir, "operator.key"), op.Key)
	pair, err := tls.LoadX509KeyPair(op.Cert, op.Key)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	require.NoError(t, err)
	require.Equal(t, "n1", leaf.Subject.CommonName)
	require.Equal(t, "n1", OperatorName(leaf))
	require.Empty(t, NodeID(leaf), "an operator's certificate names no node")

	_, err = Load(op, nil, nil)
	require.ErrorContains(t, err, "names no node", "an operator's certificate is no member's identity")

	n1, err := Load(files["n1"], nil, nil)
	require.NoError(t, err)
	client := &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{pair}}
	var saw []string
	admitOperators := func(id string, c *x509.Certificate) error {
		saw = append(saw, id+"/"+OperatorName(c))
		return nil
	}
	_, _, serr, _ := handshake(t, n1.ServerConfig(admitOperators), client)
	require.NoError(t, serr)
	require.Equal(t, []string{"/n1"}, saw, "the check sees no node ID and the operator's name")
	nodesOnly := func(id string, _ *x509.Certificate) error {
		if id == "" {
			return errors.New("not a member")
		}
		return nil
	}
	_, _, serr, _ = handshake(t, n1.ServerConfig(nodesOnly), client)
	require.ErrorContains(t, serr, "not a member")

	// A certificate naming neither is refused before any check.
	ca, err := LoadAuthority(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem"))
	require.NoError(t, err)
	_, _, err = ca.IssueOperator("", time.Now(), time.Now().Add(time.Hour))
	require.ErrorContains(t, err, "must be 1 to 128 bytes")
	_, _, err = ca.IssueOperator("a/b", time.Now(), time.Now().Add(time.Hour))
	require.ErrorContains(t, err, `operator name "a/b"`)
}
