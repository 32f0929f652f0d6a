// Package certs holds a member's TLS identity: it loads the cluster CA and
// the member's certificate and key from files, reloads them when the files
// change (certificate rotation without a restart), builds mutually
// authenticated *tls.Config values for the member's links, and names the
// member a peer certificate belongs to. It also writes a development CA and
// member certificates (Generate).
//
// A member's node ID is bound to its certificate: the URI SAN
// "graft://NODE-ID" if the certificate has one, otherwise its subject
// common name. An operator (a person or tool calling the member RPC's
// operator methods, such as the graft command) is named by the URI SAN
// "graft-operator://NAME"; a certificate with one never names a node,
// whatever its common name.
package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
	"sync"
	"time"
)

// URIScheme is the scheme of the URI SAN that names a member: graft://NODE-ID.
const URIScheme = "graft"

// OperatorScheme is the scheme of the URI SAN that names an operator:
// graft-operator://NAME.
const OperatorScheme = "graft-operator"

// reloadEvery bounds how often the files are checked for changes.
const reloadEvery = time.Second

// Files names a member's TLS material.
type Files struct {
	// CA is the PEM file of the cluster CA certificate(s) peers must chain to.
	CA string
	// Cert and Key are this member's PEM certificate (chain) and private key.
	Cert, Key string
}

// Check decides whether a peer's certificate is accepted once its chain is
// valid: id is the node ID the certificate names, or "" for an operator's
// certificate (OperatorName names the operator). A non-nil error refuses
// the peer and says why.
type Check func(id string, cert *x509.Certificate) error

// Source is a member's TLS identity, reloaded from its files when they
// change. It is safe for concurrent use.
type Source struct {
	files    Files
	revoked  map[string]bool // serial numbers, lower-case hex
	now      func() time.Time
	onRefuse func(peer string, err error)

	mu      sync.Mutex
	checked time.Time // when the files were last looked at
	stamp   string    // the files' sizes and modification times then
	cert    *tls.Certificate
	pool    *x509.CertPool
	id      string
}

// Load reads the files and returns a Source. revoked lists refused
// certificate serial numbers in hex (colons and case ignored). now is the
// clock used to check validity periods (nil means time.Now).
func Load(files Files, revoked []string, now func() time.Time) (*Source, error) {
	if files.CA == "" || files.Cert == "" || files.Key == "" {
		return nil, errors.New("TLS needs a CA file, a certificate file and a key file")
	}
	if now == nil {
		now = time.Now
	}
	s := &Source{files: files, revoked: map[string]bool{}, now: now}
	for _, r := range revoked {
		n, ok := parseSerial(r)
		if !ok {
			return nil, fmt.Errorf("revoked serial %q is not a hexadecimal number", r)
		}
		s.revoked[n.Text(16)] = true
	}
	if err := s.reload(true); err != nil {
		return nil, err
	}
	return s, nil
}

// parseSerial parses a hex serial number, ignoring colons and case.
func parseSerial(text string) (*big.Int, bool) {
	return new(big.Int).SetString(strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(text, "0x"), ":", "")), 16)
}

// OnRefuse sets a function told about every refused peer certificate:
// peer is the node ID the certificate claims (unverified; "" if none) and
// err the reason. Set it before the Source is used.
func (s *Source) OnRefuse(fn func(peer string, err error)) { s.onRefuse = fn }

// ID returns the node ID this member's certificate names.
func (s *Source) ID() string {
	_ = s.reload(false)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id
}

// reload re-reads the files if they changed since the last look (at most
// once per reloadEvery unless force). A failed reload keeps the previous
// material and returns the error.
func (s *Source) reload(force bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if !force && now.Sub(s.checked) < reloadEvery {
		return nil
	}
	s.checked = now
	stamp, err := stampOf(s.files.CA, s.files.Cert, s.files.Key)
	if err != nil {
		return err
	}
	if !force && stamp == s.stamp {
		return nil
	}
	caPEM, err := os.ReadFile(s.files.CA)
	if err != nil {
		return fmt.Errorf("reading CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return fmt.Errorf("CA file %s holds no PEM certificate", s.files.CA)
	}
	cert, err := tls.LoadX509KeyPair(s.files.Cert, s.files.Key)
	if err != nil {
		return fmt.Errorf("loading certificate %s and key %s: %w", s.files.Cert, s.files.Key, err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return fmt.Errorf("parsing certificate %s: %w", s.files.Cert, err)
	}
	cert.Leaf = leaf
	id := NodeID(leaf)
	if id == "" {
		return fmt.Errorf("certificate %s names no node (a URI SAN %s://NODE-ID or a subject common name)", s.files.Cert, URIScheme)
	}
	s.cert, s.pool, s.id, s.stamp = &cert, pool, id, stamp
	return nil
}

// stampOf summarises the files' sizes and modification times.
func stampOf(paths ...string) (string, error) {
	var b strings.Builder
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return "", fmt.Errorf("reading TLS file: %w", err)
		}
		fmt.Fprintf(&b, "%s:%d:%d;", p, fi.Size(), fi.ModTime().UnixNano())
	}
	return b.String(), nil
}

// current returns the material after a reload check.
func (s *Source) current() (*tls.Certificate, *x509.CertPool) {
	_ = s.reload(false) // a failed reload keeps serving the previous material
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cert, s.pool
}

// NodeID returns the node ID a certificate names: its first URI SAN with
// scheme graft (graft://NODE-ID), otherwise its subject common name, or "".
// An operator's certificate (see OperatorName) names no node: "".
func NodeID(cert *x509.Certificate) string {
	if OperatorName(cert) != "" {
		return ""
	}
	for _, u := range cert.URIs {
		if u.Scheme == URIScheme && u.Host != "" {
			return u.Host
		}
	}
	return cert.Subject.CommonName
}

// OperatorName returns the operator a certificate names: the host of its
// first URI SAN with scheme graft-operator (graft-operator://NAME), or "".
func OperatorName(cert *x509.Certificate) string {
	for _, u := range cert.URIs {
		if u.Scheme == OperatorScheme && u.Host != "" {
			return u.Host
		}
	}
	return ""
}

// verify checks a peer's chain against the CA, its validity period, the
// revocation list and check, and returns the node ID it names ("" for an
// operator's certificate).
func (s *Source) verify(rawCerts [][]byte, check Check, usage x509.ExtKeyUsage) (string, error) {
	if len(rawCerts) == 0 {
		return "", errors.New("the peer sent no certificate")
	}
	certs := make([]*x509.Certificate, len(rawCerts))
	for i, raw := range rawCerts {
		c, err := x509.ParseCertificate(raw)
		if err != nil {
			return "", fmt.Errorf("the peer's certificate does not parse: %w", err)
		}
		certs[i] = c
	}
	_, pool := s.current()
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	leaf := certs[0]
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, CurrentTime: s.now(), KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		return "", fmt.Errorf("the peer's certificate is not valid for this cluster: %w", err)
	}
	for _, c := range certs {
		if s.revoked[c.SerialNumber.Text(16)] {
			return "", fmt.Errorf("the peer's certificate (serial %s) is revoked", c.SerialNumber.Text(16))
		}
	}
	id := NodeID(leaf)
	if id == "" && OperatorName(leaf) == "" {
		return "", errors.New("the peer's certificate names no node and no operator")
	}
	if check != nil {
		if err := check(id, leaf); err != nil {
			return id, err
		}
	}
	return id, nil
}

// verifyPeer is verify, telling onRefuse about a refusal.
func (s *Source) verifyPeer(rawCerts [][]byte, check Check, usage x509.ExtKeyUsage) error {
	id, err := s.verify(rawCerts, check, usage)
	if err != nil && s.onRefuse != nil {
		if id == "" && len(rawCerts) > 0 {
			if c, perr := x509.ParseCertificate(rawCerts[0]); perr == nil {
				id = NodeID(c)
			}
		}
		s.onRefuse(id, err)
	}
	return err
}

// ServerConfig returns the configuration of a listener that requires and
// verifies client certificates with check. Certificates rotate: every
// handshake uses the newest files.
func (s *Source) ServerConfig(check Check) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		ClientAuth: tls.RequireAnyClientCert, // verified below, against the current CA
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			cert, _ := s.current()
			return cert, nil
		},
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			return s.verifyPeer(raw, check, x509.ExtKeyUsageClientAuth)
		},
	}
}

// ClientConfig returns the configuration of a dialer that presents this
// member's certificate and verifies the server's with check (the server
// name is not checked: members are named by their certificates' node IDs,
// not by host names).
func (s *Source) ClientConfig(check Check) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // verified below, against the current CA
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			cert, _ := s.current()
			return cert, nil
		},
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			return s.verifyPeer(raw, check, x509.ExtKeyUsageServerAuth)
		},
	}
}

// PeerID returns the node ID of the peer of a completed handshake, or "".
func PeerID(state tls.ConnectionState) string {
	if len(state.PeerCertificates) == 0 {
		return ""
	}
	return NodeID(state.PeerCertificates[0])
}
