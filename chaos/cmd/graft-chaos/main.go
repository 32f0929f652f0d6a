// Command graft-chaos runs one of the chaos harness's named scenarios
// against real Graft members in this process and writes a report: it exits
// 0 only when every checker passed. With -processes every member runs in
// a child process of its own (this program again, see
// harness.ProcessOptions), so a crash is a SIGKILL; that mode applies
// only the crash, restart, wipe, join, leave and disk-floor faults, and
// refuses a scenario with any other.
//
//	go run ./chaos/cmd/graft-chaos -scenario partition-minority -seed 7 -members 3 -workflows 40 -duration 10s -out ./chaos-out
//	go run ./chaos/cmd/graft-chaos -processes -scenario crash-restart -seed 7
//	go run ./chaos/cmd/graft-chaos -list
//
// The -out directory gets report.json (scenario, seed, the faults as
// applied with their times, each check's result and counts, workflow
// figures, throughput during and after the faults), history.json (every
// client operation and step execution) and, when the history is not
// linearizable, history.html (porcupine's visualisation).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"time"

	"github.com/eleven-am/graft/chaos/harness"
)

func main() {
	harness.MemberMain(harness.MemberOptions{}) // in a member process: runs the member and exits
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the command without the process around it: it returns the exit
// code (0 passed, 1 a check failed, 2 the run could not be carried out or
// the flags are wrong).
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("graft-chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		name      = fs.String("scenario", "partition-minority", "scenario to run (see -list)")
		seed      = fs.Int64("seed", 1, "seed of the fault schedule, the workload and the network's drops")
		members   = fs.Int("members", 3, "founding members")
		shards    = fs.Int("shards", 4, "shards")
		workflows = fs.Int("workflows", 30, "workflows started during the fault phase")
		duration  = fs.Duration("duration", 10*time.Second, "fault phase")
		settle    = fs.Duration("settle", 60*time.Second, "liveness bound after the faults are healed")
		opTimeout = fs.Duration("op-timeout", 5*time.Second, "bound on each client operation")
		controls  = fs.Float64("controls", 0.3, "fraction of workflows that also get a pause and resume, or a stop (negative: none)")
		out       = fs.String("out", "chaos-out", "directory for report.json, history.json and history.html")
		data      = fs.String("data", "", "directory for the members' data (default: a temporary directory, removed)")
		list      = fs.Bool("list", false, "list the scenarios and exit")
		verbose   = fs.Bool("v", false, "log the members' warnings and errors to stderr")
		processes = fs.Bool("processes", false, "run every member in a child process of its own on loopback sockets (crash = SIGKILL; network and disk faults refused)")
	)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *list {
		for _, s := range harness.Scenarios() {
			if *processes && !harness.RunsInProcesses(s) {
				continue
			}
			fmt.Fprintf(stdout, "%-20s %s\n", s.Name, s.Description)
		}
		return 0
	}
	sc, ok := harness.ScenarioNamed(*name)
	if !ok {
		fmt.Fprintf(stderr, "graft-chaos: no scenario %q (see -list)\n", *name)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	opts := harness.Options{Members: *members, Seed: *seed, Shards: *shards, Duration: *duration, Settle: *settle,
		Workload: harness.Workload{Workflows: *workflows, OpTimeout: *opTimeout, Controls: *controls}, Dir: *out, DataDir: *data, Logger: logger}
	if *processes {
		opts.Process = &harness.ProcessOptions{}
	}
	if *verbose {
		opts.MemberLogger = func(m string) *slog.Logger {
			return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("member", m)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := harness.Run(ctx, sc, opts)
	if err != nil {
		fmt.Fprintf(stderr, "graft-chaos: scenario %s seed %d: %v\n", *name, *seed, err)
		return 2
	}
	if err := rep.WriteFiles(*out); err != nil {
		fmt.Fprintf(stderr, "graft-chaos: %v\n", err)
		return 2
	}
	fmt.Fprintln(stdout, rep.Summary())
	for _, f := range rep.Faults {
		line := fmt.Sprintf("  fault %-40s applied %v", f.Fault.String(), time.Duration(f.Applied).Round(time.Millisecond))
		if f.Error != "" {
			line += " NOT APPLIED: " + f.Error
		}
		if r := f.Recovery; r != nil {
			line += fmt.Sprintf(", ended %v (%s), %.1f steps/s before", time.Duration(r.Ended).Round(time.Millisecond), r.EndedBy, r.RateBefore)
			if r.Recovered {
				line += fmt.Sprintf(", back to %.0f%% %v after its end", harness.RecoveryFraction*100, time.Duration(r.After).Round(time.Millisecond))
			} else {
				line += ", not recovered"
			}
		}
		fmt.Fprintln(stdout, line)
	}
	for _, c := range rep.Checks {
		verdict := "ok"
		if !c.Passed {
			verdict = fmt.Sprintf("FAILED (%d): %v", c.Count, c.Violations)
		}
		fmt.Fprintf(stdout, "  %-26s checked %4d  %s %s\n", c.Name, c.Checked, verdict, c.Note)
	}
	if !rep.Passed {
		mode := ""
		if *processes {
			mode = " -processes"
		}
		fmt.Fprintf(stdout, "repeat with:%s -scenario %s -seed %d -members %d\n", mode, *name, *seed, *members)
		return 1
	}
	return 0
}
