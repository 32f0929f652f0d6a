// Package wf is the deterministic workflow state machine that runs inside every
// shard replica: it owns the workflow record layout in the shard's keyspace, the
// commands that change it, the queries that read it, and the change notifications
// that drive the executor and the event bus. It keeps, in the same batch as the
// records they index, the secondary indexes that list and count workflows
// (index.go, list.go).
//
// Everything here is a pure function of the committed command stream: time comes
// from the command (Now), never from the replica's clock, so every replica of a
// shard reaches byte-identical state.
package wf
