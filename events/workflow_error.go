package events

// WorkflowError is the error a failed workflow reports in its
// WorkflowErrorEvent: the failing node, its attempt and its error text.
type WorkflowError struct {
	WorkflowID string
	NodeName   string
	Attempt    int
	Message    string
}

// Error describes the failure.
func (e *WorkflowError) Error() string {
	if e.NodeName == "" {
		return "workflow " + e.WorkflowID + " failed: " + e.Message
	}
	return "workflow " + e.WorkflowID + " failed in node " + e.NodeName + ": " + e.Message
}
