// Package ring owns placement: which shard a workflow ID belongs to, and
// (in a cluster) which members hold each shard's replicas.
//
// A workflow's shard depends only on its ID and the cluster's shard count,
// which is fixed when the cluster is created, so every member computes the
// same shard for the same ID without coordination.
package ring
