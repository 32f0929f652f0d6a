package opclient

import (
	"context"

	"github.com/eleven-am/graft/internal/operator"
)

// Members describes the cluster's members as the member sees them.
func (c *Client) Members(ctx context.Context) (*operator.MembersAnswer, error) {
	var out operator.MembersAnswer
	if err := c.call(ctx, operator.MethodMembers, "", struct{}{}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Shards describes the cluster's shards as the member sees them.
func (c *Client) Shards(ctx context.Context) (*operator.ShardsAnswer, error) {
	var out operator.ShardsAnswer
	if err := c.call(ctx, operator.MethodShards, "", struct{}{}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// List returns a page of workflows.
func (c *Client) List(ctx context.Context, req operator.ListRequest) (*operator.ListAnswer, error) {
	var out operator.ListAnswer
	if err := c.call(ctx, operator.MethodList, "", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Count counts the workflows f selects, by status.
func (c *Client) Count(ctx context.Context, f operator.Filter) (*operator.Counts, error) {
	var out operator.Counts
	if err := c.call(ctx, operator.MethodCount, "", f, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Show returns workflow id; an unknown one is a *NotFoundError.
func (c *Client) Show(ctx context.Context, id string) (*operator.Workflow, error) {
	var out operator.Workflow
	if err := c.call(ctx, operator.MethodShow, id, operator.WorkflowRequest{ID: id}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Pause pauses workflow id.
func (c *Client) Pause(ctx context.Context, id string) error {
	return c.call(ctx, operator.MethodPause, id, operator.WorkflowRequest{ID: id}, nil)
}

// Resume resumes workflow id.
func (c *Client) Resume(ctx context.Context, id string) error {
	return c.call(ctx, operator.MethodResume, id, operator.WorkflowRequest{ID: id}, nil)
}

// Stop stops workflow id for good.
func (c *Client) Stop(ctx context.Context, id string) error {
	return c.call(ctx, operator.MethodStop, id, operator.WorkflowRequest{ID: id}, nil)
}

// Broadcast sends a dev command to every member; the answering member's
// handler error is the error.
func (c *Client) Broadcast(ctx context.Context, req operator.CommandRequest) error {
	return c.call(ctx, operator.MethodBroadcast, "", req, nil)
}

// Query sends a dev command to every member and returns each one's
// outcome.
func (c *Client) Query(ctx context.Context, req operator.CommandRequest) (*operator.QueryAnswer, error) {
	var out operator.QueryAnswer
	if err := c.call(ctx, operator.MethodQuery, "", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
