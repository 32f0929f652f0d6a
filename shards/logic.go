package shards

// Reader reads one shard's keyspace. Keys are given and returned WITHOUT the
// shard prefix. A Reader is only valid during the call it was passed to.
type Reader interface {
	// Get returns a copy of the value, found=false if absent.
	Get(key []byte) (value []byte, found bool, err error)
	// Scan calls fn for each key in [start, end) in order; end == nil means to
	// the end of the shard's keyspace. key and value are only valid during
	// the call. fn returns false to stop.
	Scan(start, end []byte, fn func(key, value []byte) bool) error
}

// Writer is a Reader that also writes. Reads see earlier writes of the same
// batch. Writes become durable and visible to other readers only when the
// whole batch commits, after Logic.Apply has returned for every command of
// the batch.
type Writer interface {
	Reader
	// Set stores value under key. Both slices may be reused after it returns.
	Set(key, value []byte) error
	// Delete removes key; deleting an absent key is not an error.
	Delete(key []byte) error
}

// Logic is the deterministic application logic of one shard replica.
//
// Dragonboat may call Lookup concurrently with Apply, Applied and Open;
// implementations synchronise themselves. Apply, Applied and Open are never
// called concurrently with each other. Logic must not read the wall clock,
// random numbers or anything else that differs between replicas.
type Logic interface {
	// Open (re)loads in-memory indexes from committed state; called when the
	// replica opens and after a snapshot is recovered.
	Open(r Reader) error
	// Apply applies one command at the given raft index inside the current
	// batch and returns the result delivered to the proposer. Commands that
	// were group-committed into one raft entry share its index and are
	// applied in proposal order. A returned error is fatal (storage failure),
	// not a business rejection: encode rejections in the result instead.
	Apply(w Writer, index uint64, cmd []byte) ([]byte, error)
	// Applied is called after the batch containing every command up to index
	// has been committed to Pebble.
	Applied(index uint64)
	// Lookup answers a read-only query against committed state.
	Lookup(r Reader, query []byte) ([]byte, error)
}

// Upgrader is implemented by a Logic whose stored layout gains keys derived
// from its other keys between versions (secondary indexes). Upgrade runs
// when a replica opens and after it recovers a snapshot, before Open; its
// writes commit in one batch. It must derive them from the keyspace alone,
// as Apply would have written them, so that replicas upgraded at different
// indexes stay identical; on an up-to-date keyspace it writes nothing.
type Upgrader interface {
	Upgrade(w Writer) error
}
