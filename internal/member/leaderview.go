package member

// leaderView is what a member believes about one shard's leader: the
// latest Raft term it has heard of and the leader's replica ID in it (0 for
// none known).
//
// Two sources feed it, and they race. Dragonboat's leader events arrive in
// order on one queue, but late: the engine may have read the shard's leader
// directly (when waiting for a leader at start, or when healing a dropped
// event) before the queue delivers the events that led there. Applied
// blindly, such a late event takes leadership away and gives it back: the
// engine forgets the shard's workflows, and on getting them back re-queues
// the step it is still running, which then runs a second time (the
// TestStepErrors/NoRetries flake: a step's only run seen as attempt 2).
// next orders the two sources by term, and within a term lets the queue
// override a direct read only once it has caught up with it.
type leaderView struct {
	term   uint64
	leader uint64
	// queued is set once the event queue has delivered a known leader in
	// term: a later event of term without a leader is then the leader
	// stepping down, not the election that preceded it.
	queued bool
}

// leaderSource says where an observation of a shard's leader came from.
type leaderSource uint8

const (
	fromEvent leaderSource = iota // Dragonboat's leader-event queue, in order
	fromRead                      // a direct read of the replica's current leader
)

// next returns the view after observing leader in term from src, and
// whether the observation is current (false: it is older than what the
// view holds and must be ignored).
func (v leaderView) next(src leaderSource, term, leader uint64) (leaderView, bool) {
	switch {
	case term < v.term:
		return v, false
	case term > v.term:
		return leaderView{term: term, leader: leader, queued: src == fromEvent && leader != 0}, true
	}
	// The same term: at most one leader is elected in it, so the only
	// changes are none→leader (elected) and leader→none (stepped down).
	switch src {
	case fromEvent:
		if leader != 0 {
			return leaderView{term: term, leader: leader, queued: true}, true
		}
		if v.leader != 0 && !v.queued {
			// The election's own event, behind a direct read that saw
			// its outcome.
			return v, false
		}
		return leaderView{term: term, queued: v.queued}, true
	default:
		if v.queued || leader == 0 {
			// The queue is as new as any read within the term (the
			// replica's leader record is updated after the event).
			return v, false
		}
		return leaderView{term: term, leader: leader}, true
	}
}
