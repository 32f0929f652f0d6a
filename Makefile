# Graft: two commands set everything up on a fresh machine with Go:
#   make demo   runs examples/quickstart (a real workflow, data under ./data)
#   make test   vet + every test with the race detector + every fuzz target briefly
GO ?= go

.PHONY: demo cluster-demo certs test fuzz-short test-short bench bench-list sizing soak vet chaos

demo:
	$(GO) run ./examples/quickstart

# 3 member processes on loopback (examples/cluster): workflows, one member stopped, the rest finish.
# TLS=1 runs them with mutual TLS, a gossip key and the strict policy (certificates from make certs).
cluster-demo: $(if $(TLS),certs)
	$(GO) run ./examples/cluster $(if $(TLS),-tls certs)

# A development CA, certificates for n1, n2 and n3, and an operator
# certificate for the graft command (operator.crt, operator.key) in ./certs.
certs:
	$(GO) run ./internal/cmd/graftcerts -out certs -members n1,n2,n3

test: vet
	$(GO) test -race -count=1 -timeout 20m ./...
	$(GO) test -count=1 -run 'AtFleetScale' . ./ring/ ./internal/statefleet/
	$(MAKE) fuzz-short

# Every fuzz target in the module for FUZZTIME each (seed corpora in each
# package's testdata/fuzz); make test runs it after the tests. FUZZTIME is
# a count of inputs, not a duration: with a duration, Go's fuzzing
# coordinator (before Go 1.27, golang/go#75804) can fail a target with
# "context deadline exceeded" at the deadline on a loaded machine, with no
# failing input. 2000 inputs take 0.2 to 7 s per target here. FUZZTIME=30s
# explores longer, with that risk.
FUZZTIME ?= 2000x
fuzz-short:
	@set -e; for f in $$(git ls-files '*_test.go' | xargs grep -l '^func Fuzz'); do \
	  pkg=./$$(dirname $$f); \
	  for t in $$(grep -o '^func Fuzz[A-Za-z0-9_]*' $$f | sed 's/^func //'); do \
	    echo "fuzz $$pkg $$t ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

test-short:
	$(GO) test -short -count=1 ./...

# The default scenarios (one JSON line each). Not in the default list, run
# by name with -scenarios: fleet-N (N members in one process: formation
# time, RSS per member), shard-cost-N (a member with N shards: start
# time, RSS, idle CPU; -cost-members for more members) and gossip-N (N
# gossip+CRDT members without shards on an in-memory network: convergence
# after the last join and after a 50/50 partition heals, bytes sent per
# member per second, state size; about a minute for gossip-100); make
# sizing runs them, each in its own process so that RSS readings start
# clean.
bench:
	$(GO) run ./internal/cmd/graftbench

# The README's sizing figures, each scenario in a fresh process, RUNS times
# (the README gives medians): fleet-3/5/10, gossip-100, and
# shard-cost-8/16/32/64 on one member and on three.
RUNS ?= 3
FLEETS ?= fleet-3 fleet-5 fleet-10
GOSSIPS ?= gossip-100
COSTS ?= shard-cost-8 shard-cost-16 shard-cost-32 shard-cost-64
sizing:
	@$(GO) build -o $${TMPDIR:-/tmp}/graftbench-sizing ./internal/cmd/graftbench
	@bin=$${TMPDIR:-/tmp}/graftbench-sizing; failed=0; for r in $$(seq $(RUNS)); do \
	  for s in $(FLEETS) $(GOSSIPS) $(COSTS); do $$bin -scenarios $$s || failed=1; done; \
	  for s in $(COSTS); do $$bin -scenarios $$s -cost-members 3 || failed=1; done; \
	done; exit $$failed

# Every named chaos scenario (chaos/cmd/graft-chaos -list) for seeds
# 1..CHAOS_SEEDS, three members each, CHAOS_JOBS runs at a time; reports in
# chaos-out/<scenario>-<seed>/, one line per run in chaos-out/results.txt.
# Fails if any run fails; the failing runs are listed with their seeds.
# A run waits more than it computes (about 3s of CPU in 12-20s), so three
# at once fit two cores: the 130 runs of CHAOS_SEEDS=10 took 10m54s on a
# shared 2-core machine (see the README's chaos section).
# CHAOS_FLAGS=-processes runs the scenarios process mode can apply.
# (make test runs three short scenarios: harness.TestRunPartitionMinority,
# TestRunDiskFull and TestRunSlowDisk, and one in process mode.)
CHAOS_SEEDS ?= 10
CHAOS_JOBS ?= 3
CHAOS_FLAGS ?= -members 3 -workflows 30 -duration 6s
chaos:
	@mkdir -p bin chaos-out
	$(GO) build -o bin/graft-chaos ./chaos/cmd/graft-chaos
	@start=$$(date +%s); \
	for seed in $$(seq 1 $(CHAOS_SEEDS)); do \
	  for s in $$(bin/graft-chaos $(CHAOS_FLAGS) -list | awk '{print $$1}'); do echo "$$s $$seed"; done; \
	done | xargs -P $(CHAOS_JOBS) -L 1 sh -c \
	  'if bin/graft-chaos -scenario $$0 -seed $$1 $(CHAOS_FLAGS) -out chaos-out/$$0-$$1 >chaos-out/$$0-$$1.txt 2>chaos-out/$$0-$$1.log; \
	   then echo "ok     $$0 seed $$1"; else echo "FAILED $$0 seed $$1 (chaos-out/$$0-$$1.txt)"; fi' \
	  | tee chaos-out/results.txt; \
	echo "$$(grep -c '^ok' chaos-out/results.txt) runs passed, $$(grep -c '^FAILED' chaos-out/results.txt) failed, in $$(( $$(date +%s) - start ))s"; \
	! grep -q '^FAILED' chaos-out/results.txt

# ListWorkflows and CountWorkflows latency with 100,000 workflows stored
# (also in make bench's default list).
bench-list:
	$(GO) run ./internal/cmd/graftbench -scenarios list

# 100,000 one-step workflows with a 1s retention: data-dir size and RSS per second.
soak:
	$(GO) run ./internal/cmd/graftbench -scenarios retention-soak

vet:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet ./...

# The operations page (package graftui) on http://127.0.0.1:8090/ over one
# embedded member that keeps starting workflows (some fail, some are slow
# or blocked for a while); data under ./data/uidemo; Ctrl-C stops it.
.PHONY: ui-demo
ui-demo:
	$(GO) run ./examples/uidemo
