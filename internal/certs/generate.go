package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// Authority is a CA that signs member certificates.
type Authority struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	// PEM is the CA certificate, PEM-encoded.
	PEM []byte
}

// NewAuthority creates a self-signed CA valid from now for validity.
func NewAuthority(name string, now time.Time, validity time.Duration) (*Authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("creating CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Authority{Cert: cert, Key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// Issue signs a certificate for member nodeID (URI SAN graft://nodeID and
// common name nodeID, usable as client and server), valid from notBefore
// until notAfter, for the given host names and IPs. It returns the
// certificate and key, PEM-encoded.
func (a *Authority) Issue(nodeID string, hosts []string, notBefore, notAfter time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: nodeID},
		URIs:         []*url.URL{{Scheme: URIScheme, Host: nodeID}},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.Cert, &key.PublicKey, a.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("signing the certificate of %s: %w", nodeID, err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), nil
}

// IssueOperator signs a certificate for operator name (URI SAN
// graft-operator://name and common name name, usable as a client only),
// valid from notBefore until notAfter. It returns the certificate and key,
// PEM-encoded. The certificate calls a member's operator methods and never
// passes as a member's.
func (a *Authority) IssueOperator(name string, notBefore, notAfter time.Time) (certPEM, keyPEM []byte, err error) {
	if !validOperatorName(name) {
		return nil, nil, fmt.Errorf("operator name %.40q must be 1 to 128 bytes of letters, digits, '.', '_' and '-'", name)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: name},
		URIs:         []*url.URL{{Scheme: OperatorScheme, Host: name}},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.Cert, &key.PublicKey, a.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("signing the certificate of operator %s: %w", name, err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), nil
}

// validOperatorName reports whether name can name an operator (the host
// of a URI): 1 to 128 bytes of letters, digits, '.', '_' and '-'.
func validOperatorName(name string) bool {
	if name == "" || len(name) > 128 {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// GenerateOperator writes a certificate for operator name, signed by the
// development CA Generate wrote into dir (ca.pem, ca-key.pem), as
// operator.crt and operator.key in dir, valid for validity from now. It
// returns the Files of the operator.
func GenerateOperator(dir, name string, validity time.Duration) (Files, error) {
	ca, err := LoadAuthority(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem"))
	if err != nil {
		return Files{}, err
	}
	now := time.Now()
	c, k, err := ca.IssueOperator(name, now.Add(-time.Minute), now.Add(validity))
	if err != nil {
		return Files{}, err
	}
	if err := writeFiles(dir, map[string][]byte{"operator.crt": c, "operator.key": k}); err != nil {
		return Files{}, err
	}
	return Files{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "operator.crt"), Key: filepath.Join(dir, "operator.key")}, nil
}

// Generate writes a development CA (ca.pem, ca-key.pem) and, for each
// member, NODE.pem and NODE-key.pem into dir, valid for validity from now,
// for localhost and 127.0.0.1 plus hosts. It returns the Files of each member.
func Generate(dir string, members, hosts []string, validity time.Duration) (map[string]Files, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	now := time.Now()
	ca, err := NewAuthority("graft development CA", now, validity)
	if err != nil {
		return nil, err
	}
	caKey, err := x509.MarshalECPrivateKey(ca.Key)
	if err != nil {
		return nil, err
	}
	if err := writeFiles(dir, map[string][]byte{
		"ca.pem":     ca.PEM,
		"ca-key.pem": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: caKey}),
	}); err != nil {
		return nil, err
	}
	out := map[string]Files{}
	for _, id := range members {
		c, k, err := ca.Issue(id, append([]string{"localhost", "127.0.0.1"}, hosts...), now.Add(-time.Minute), now.Add(validity))
		if err != nil {
			return nil, err
		}
		if err := writeFiles(dir, map[string][]byte{id + ".pem": c, id + "-key.pem": k}); err != nil {
			return nil, err
		}
		out[id] = Files{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, id+".pem"), Key: filepath.Join(dir, id+"-key.pem")}
	}
	return out, nil
}

// writeFiles writes each file into dir, keys readable by the owner only.
func writeFiles(dir string, files map[string][]byte) error {
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return fmt.Errorf("writing %s: %w", name, err)
		}
	}
	return nil
}

// randomSerial returns a random 128-bit certificate serial number.
func randomSerial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128)) // crypto/rand never fails (Go 1.24+)
	return n
}

// LoadAuthority reads a CA certificate and its ECDSA key (as Generate
// writes them), to issue more certificates.
func LoadAuthority(certFile, keyFile string) (*Authority, error) {
	caPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(caPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("loading CA %s and key %s: %w", certFile, keyFile, err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, err
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok || !cert.IsCA {
		return nil, fmt.Errorf("%s is not an ECDSA CA certificate with its key", certFile)
	}
	return &Authority{Cert: cert, Key: key, PEM: caPEM}, nil
}
