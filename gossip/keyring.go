package gossip

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/serf"
)

// Gossip encryption keys rotate without downtime, cluster-wide, through
// Serf's key manager: install the new key on every member, make it the
// primary (the key messages are encrypted with; every installed key still
// decrypts), then remove the old one. With Config.KeyringFile set, each
// member records its keyring there and uses it again after a restart, so a
// member restarted after a rotation still speaks the cluster's key.

// keyring returns the memberlist keyring of c: the keys of KeyringFile if
// it exists (its first key is the primary), with Key added; otherwise Key
// alone; nil when there is no key at all.
func keyring(c Config) (*memberlist.Keyring, error) {
	var keys [][]byte
	if c.KeyringFile != "" {
		b, err := os.ReadFile(c.KeyringFile)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return nil, fmt.Errorf("reading KeyringFile: %w", err)
		default:
			var encoded []string
			if err := json.Unmarshal(b, &encoded); err != nil {
				return nil, fmt.Errorf("%w: KeyringFile %s is not a JSON list of keys: %v", ErrInvalidConfig, c.KeyringFile, err)
			}
			for i, e := range encoded {
				k, err := base64.StdEncoding.DecodeString(e)
				if err != nil {
					return nil, fmt.Errorf("%w: KeyringFile %s key %d is not base64: %v", ErrInvalidConfig, c.KeyringFile, i, err)
				}
				keys = append(keys, k)
			}
		}
	}
	if len(c.Key) > 0 && !slices.ContainsFunc(keys, func(k []byte) bool { return string(k) == string(c.Key) }) {
		keys = append(keys, c.Key)
	}
	if len(keys) == 0 {
		return nil, nil
	}
	kr, err := memberlist.NewKeyring(keys[1:], keys[0])
	if err != nil {
		return nil, fmt.Errorf("%w: gossip keys: %w", ErrInvalidConfig, err)
	}
	return kr, nil
}

// keyOpAttempts is how many times a key operation is sent while members
// fail to answer in time.
const keyOpAttempts = 3

// KeyResult is what the members answered to a key operation.
type KeyResult struct {
	// Members is how many members the operation reached, Answered how many
	// answered.
	Members, Answered int
	// Keys maps each installed key (base64) to how many members hold it
	// (ListKeys only).
	Keys map[string]int
}

// InstallKey adds key (16, 24 or 32 bytes) to every member's keyring. The
// primary key does not change. It fails, naming the members, if any member
// refused or did not answer.
func (n *Node) InstallKey(key []byte) (KeyResult, error) {
	return n.keyOp("install", key, func(km *serf.KeyManager, k string) (*serf.KeyResponse, error) { return km.InstallKey(k) })
}

// UseKey makes key, installed before, every member's primary key.
func (n *Node) UseKey(key []byte) (KeyResult, error) {
	return n.keyOp("use", key, func(km *serf.KeyManager, k string) (*serf.KeyResponse, error) { return km.UseKey(k) })
}

// RemoveKey removes key, which must not be the primary, from every
// member's keyring.
func (n *Node) RemoveKey(key []byte) (KeyResult, error) {
	return n.keyOp("remove", key, func(km *serf.KeyManager, k string) (*serf.KeyResponse, error) { return km.RemoveKey(k) })
}

// ListKeys asks every member for its keys.
func (n *Node) ListKeys() (KeyResult, error) {
	return n.keyOp("list", nil, func(km *serf.KeyManager, _ string) (*serf.KeyResponse, error) { return km.ListKeys() })
}

// keyOp runs one key-manager operation and turns its answers into an error
// naming the members that failed.
func (n *Node) keyOp(what string, key []byte, op func(*serf.KeyManager, string) (*serf.KeyResponse, error)) (KeyResult, error) {
	s, err := n.serf()
	if err != nil {
		return KeyResult{}, err
	}
	if key != nil {
		if l := len(key); l != 16 && l != 24 && l != 32 {
			return KeyResult{}, fmt.Errorf("%w: a gossip key is 16, 24 or 32 bytes, not %d", ErrInvalidConfig, l)
		}
	}
	if !s.EncryptionEnabled() {
		return KeyResult{}, fmt.Errorf("gossip keys: this member has no key (set Cluster.Key): gossip is not encrypted")
	}
	// The key manager's queries use Serf's default query timeout; members
	// that answer late (a loaded machine) are asked again: every operation
	// is idempotent.
	var resp *serf.KeyResponse
	for attempt := 0; attempt < keyOpAttempts; attempt++ {
		resp, err = op(s.KeyManager(), base64.StdEncoding.EncodeToString(key))
		if resp == nil || resp.NumErr > 0 || resp.NumResp >= resp.NumNodes {
			break
		}
	}
	if resp == nil {
		return KeyResult{}, fmt.Errorf("%s gossip key: %w", what, err)
	}
	res := KeyResult{Members: resp.NumNodes, Answered: resp.NumResp, Keys: resp.Keys}
	var failed []string
	for member, msg := range resp.Messages {
		failed = append(failed, member+": "+msg)
	}
	sort.Strings(failed)
	if err != nil || resp.NumErr > 0 || resp.NumResp < resp.NumNodes {
		return res, fmt.Errorf("%s gossip key: %d of %d members answered, %d failed: %s (%v)",
			what, resp.NumResp, resp.NumNodes, resp.NumErr, strings.Join(failed, "; "), err)
	}
	return res, nil
}
