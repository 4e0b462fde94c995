# The two commands README.md starts with, and a few more. Each target is a
# thin wrapper over a script in .ci/, so `bash .ci/test.sh` is the same as
# `make test` on a machine without make.
#
#   make run      install HAProxy when missing (as root), then start scheduler,
#                 agent, load balancer and a sample app on this machine
#   make test     install the test prerequisites, then run everything CI runs
#                 (SHORT=1 make test: the unit tests only, no root needed)
#   make install  go install ./cmd/... (lb, scheduler, agent, switchyard)
#   make images   build the Docker images locally (no registry)
#   make bench    run the benchmarks

.PHONY: run test install images bench

# Built into bin/ and exec'd (not `go run`, which exits 1 on Ctrl-C).
run:
	@bash .ci/prereqs.sh run
	go build -o bin/switchyard ./cmd/switchyard
	exec bin/switchyard $(ARGS)

test:
	@bash .ci/test.sh

install:
	go install ./cmd/...
	@echo "installed lb, scheduler, agent, switchyard (and testweb) in $$(go env GOBIN || true)$$( [ -n "$$(go env GOBIN)" ] || echo "$$(go env GOPATH)/bin")"

images:
	bash .ci/images.sh

bench:
	go test -run '^$$' -bench . -benchmem ./bench/
