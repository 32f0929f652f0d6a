// Command graftcerts writes a development CA, one certificate per member
// and one operator certificate (operator.crt, operator.key, for the graft
// command), for trying Graft's mutual TLS (make certs; make cluster-demo
// TLS=1). Production clusters use certificates from their own CA: each
// member's certificate names its node ID as the URI SAN graft://NODE-ID
// (or its subject common name) and is valid for client and server use; an
// operator's names it as the URI SAN graft-operator://NAME and is valid for
// client use.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/eleven-am/graft/internal/certs"
)

func main() {
	out := flag.String("out", "certs", "directory to write ca.pem, ca-key.pem, NODE.pem and NODE-key.pem into")
	members := flag.String("members", "n1,n2,n3", "comma-separated node IDs to issue certificates for")
	hosts := flag.String("hosts", "", "comma-separated extra host names or IPs the certificates are valid for (localhost and 127.0.0.1 always are)")
	validity := flag.Duration("validity", 30*24*time.Hour, "how long the certificates are valid")
	operator := flag.String("operator", "admin", "the operator name of operator.crt (URI SAN graft-operator://NAME); empty writes none")
	flag.Parse()
	if err := run(*out, split(*members), split(*hosts), *operator, *validity); err != nil {
		fmt.Fprintln(os.Stderr, "graftcerts:", err)
		os.Exit(1)
	}
}

func run(out string, members, hosts []string, operator string, validity time.Duration) error {
	if len(members) == 0 {
		return fmt.Errorf("-members names no member")
	}
	files, err := certs.Generate(out, members, hosts, validity)
	if err != nil {
		return err
	}
	for _, id := range members {
		f := files[id]
		fmt.Printf("%s: CA %s, certificate %s, key %s\n", id, f.CA, f.Cert, f.Key)
	}
	if operator == "" {
		return nil
	}
	f, err := certs.GenerateOperator(out, operator, validity)
	if err != nil {
		return err
	}
	fmt.Printf("operator %s: CA %s, certificate %s, key %s\n", operator, f.CA, f.Cert, f.Key)
	return nil
}

func split(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
