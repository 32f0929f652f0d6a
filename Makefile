# Graft: two commands set everything up on a fresh machine with Go:
#   make demo   runs examples/quickstart (a real workflow, data under ./data)
#   make test   vet + every test with the race detector
GO ?= go

.PHONY: demo cluster-demo test fuzz-short test-short bench soak vet

demo:
	$(GO) run ./examples/quickstart

# 3 member processes on loopback (examples/cluster): workflows, one member stopped, the rest finish.
cluster-demo:
	$(GO) run ./examples/cluster

test: vet
	$(GO) test -race -count=1 -timeout 20m ./...

# Each gossip fuzz target for 3s (seed corpus in gossip/testdata/fuzz). Not part of test.
fuzz-short:
	$(GO) test -run '^$$' -fuzz '^FuzzUserEnvelope$$' -fuzztime 3s ./gossip/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeQueryReply$$' -fuzztime 3s ./gossip/
	$(GO) test -run '^$$' -fuzz '^FuzzTags$$' -fuzztime 3s ./gossip/
	$(GO) test -run '^$$' -fuzz '^FuzzGuardPacket$$' -fuzztime 3s ./gossip/
	$(GO) test -run '^$$' -fuzz '^FuzzGuardStream$$' -fuzztime 3s ./gossip/

test-short:
	$(GO) test -short -count=1 ./...

bench:
	$(GO) run ./internal/cmd/graftbench

# 100,000 one-step workflows with a 1s retention: data-dir size and RSS per second.
soak:
	$(GO) run ./internal/cmd/graftbench -scenarios retention-soak

vet:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet ./...
