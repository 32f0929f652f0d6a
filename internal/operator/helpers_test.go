package operator_test

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
)

// tlsLeaf parses the first PEM certificate of b.
func tlsLeaf(b []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	return x509.ParseCertificate(block.Bytes)
}
