# Graft: two commands set everything up on a fresh machine with Go:
#   make demo   runs examples/quickstart (a real workflow, data under ./data)
#   make test   vet + every test with the race detector
GO ?= go

.PHONY: demo cluster-demo test test-short bench soak vet fuzz-short-rpc

demo:
	$(GO) run ./examples/quickstart

# 3 member processes on loopback (examples/cluster): workflows, one member stopped, the rest finish.
cluster-demo:
	$(GO) run ./examples/cluster

test: vet
	$(GO) test -race -count=1 -timeout 20m ./...

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

# The member RPC's decoders (requests, layout file, dev commands), ~3s each.
FUZZTIME ?= 3s
fuzz-short-rpc:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeRPC$$' -fuzztime $(FUZZTIME) .
	$(GO) test -run '^$$' -fuzz '^FuzzParseLayout$$' -fuzztime $(FUZZTIME) .
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeCommand$$' -fuzztime $(FUZZTIME) .
