package member

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/eleven-am/graft/internal/wf"
)

// listParallelism bounds the shards one list or count reads at once.
const listParallelism = 8

// List reads one page of workflows across every shard: each shard answers
// q from its indexes (through its leader, locally or forwarded, like a
// status read), in parallel, and the answers are merged in list order
// (mergePages). next is where the following page starts; nil when there
// is none. Any shard failing fails the page: a page missing a shard would
// skip its workflows for good.
func (m *Member) List(ctx context.Context, q wf.ListQuery) (items []wf.Summary, next *wf.Position, err error) {
	answers := make([]wf.ListAnswer, m.shardCount())
	err = m.eachShard(ctx, func(ctx context.Context, s uint64) error {
		return m.read(ctx, s, wf.Query{Op: wf.QueryList, List: &q}, &answers[s-1])
	})
	if err != nil {
		return nil, nil, err
	}
	items, next = mergePages(answers, q.Limit)
	return items, next, nil
}

// Count counts the workflows q selects across every shard, by list
// status. complete is false when a shard's filtered count stopped at
// wf.MaxCountExamine index entries.
func (m *Member) Count(ctx context.Context, q wf.ListQuery) (counts wf.StatusCounts, complete bool, err error) {
	answers := make([]wf.CountAnswer, m.shardCount())
	err = m.eachShard(ctx, func(ctx context.Context, s uint64) error {
		return m.read(ctx, s, wf.Query{Op: wf.QueryCount, List: &q}, &answers[s-1])
	})
	if err != nil {
		return counts, false, err
	}
	complete = true
	for _, a := range answers {
		for i, n := range a.Counts {
			counts[i] += n
		}
		complete = complete && a.Complete
	}
	return counts, complete, nil
}

// eachShard runs read for every shard, at most listParallelism at once,
// and returns the first error (naming its shard); the others are
// cancelled.
func (m *Member) eachShard(ctx context.Context, read func(ctx context.Context, s uint64) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, listParallelism)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for s := uint64(1); s <= m.shardCount(); s++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := read(ctx, s); err != nil {
				once.Do(func() { first = fmt.Errorf("reading shard %d: %w", s, err) })
				cancel(err)
			}
		})
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return context.Cause(ctx)
}

// mergePages merges the shards' answers to one list query into a page of
// at most limit workflows in list order (newest first, ties by ID). A
// shard that stopped early (More) has looked only up to its Last position,
// so no workflow after the earliest such position may be shown yet: the
// page is cut there, and the next page starts after its last workflow when
// it is full, otherwise after the cut. next is nil when every shard
// reached the end of its range and the page holds the rest.
func mergePages(answers []wf.ListAnswer, limit int) ([]wf.Summary, *wf.Position) {
	var cut *wf.Position
	var all []wf.Summary
	for i := range answers {
		a := &answers[i]
		all = append(all, a.Items...)
		if a.More && (cut == nil || a.Last.Before(*cut)) {
			last := a.Last
			cut = &last
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Position().Before(all[j].Position()) })
	if cut != nil {
		n := sort.Search(len(all), func(i int) bool { return cut.Before(all[i].Position()) })
		all = all[:n]
	}
	if len(all) > limit {
		all = all[:limit]
	}
	switch {
	case len(all) == limit && limit > 0:
		last := all[len(all)-1].Position()
		if cut == nil && len(all) == countItems(answers) {
			return all, nil // nothing left anywhere
		}
		return all, &last
	case cut != nil:
		return all, cut
	default:
		return all, nil
	}
}

// countItems is the number of workflows in answers.
func countItems(answers []wf.ListAnswer) int {
	n := 0
	for i := range answers {
		n += len(answers[i].Items)
	}
	return n
}
