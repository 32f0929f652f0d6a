package executor

import (
	"fmt"
	"maps"
	"slices"
	"sync"
)

// Registry holds the nodes a member can execute, by name. The zero value is
// not usable; create one with NewRegistry. All methods are safe for
// concurrent use.
type Registry struct {
	mu    sync.RWMutex
	nodes map[string]*Node
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry {
	return &Registry{nodes: make(map[string]*Node)}
}

// Register validates node and adds it under the name its GetName method
// returns. GetName is called once, here.
//
// A node is any value (usually a pointer to a struct) with a GetName
// method, one of the Execute methods and optionally one of the CanStart
// methods below, where S and C are each a struct, a pointer to a struct, a
// map with string keys or interface{}, chosen independently:
//
//	GetName() string
//
//	Execute(ctx context.Context, state S, config C) (*NodeResult, error)
//	Execute(state S, config C) (*NodeResult, error)
//	Execute(state S) (*NodeResult, error)
//
//	CanStart(ctx context.Context, state S, config C) bool
//	CanStart(state S, config C) bool
//	CanStart(state S) bool
//
// Execute and CanStart may use different shapes and types. Methods must be
// in the method set of the registered value: methods with pointer receivers
// need a pointer.
//
// Register returns an error wrapping ErrInvalidNode for an unsupported node
// and ErrDuplicateNode if the name is taken; the text names the node (or its
// type, if the name is unknown) and the problem.
func (r *Registry) Register(node any) error {
	n, err := newNode(node)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.nodes[n.name]; ok {
		return &nodeError{node: fmt.Sprintf("%q", n.name), msg: "already registered", kind: ErrDuplicateNode}
	}
	r.nodes[n.name] = n
	return nil
}

// Unregister removes the node registered under name. It returns an error
// wrapping ErrNodeNotFound if there is none.
func (r *Registry) Unregister(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.nodes[name]; !ok {
		return &nodeError{node: fmt.Sprintf("%q", name), msg: "not registered", kind: ErrNodeNotFound}
	}
	delete(r.nodes, name)
	return nil
}

// Get returns the node registered under name.
func (r *Registry) Get(name string) (*Node, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	n, ok := r.nodes[name]
	return n, ok
}

// Names returns the registered node names in ascending order.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Sorted(maps.Keys(r.nodes))
}
