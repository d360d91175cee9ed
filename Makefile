# alicloud-bgp-operator: the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: demo test lint crds docs check-generated tools sdk-setup unit build

## demo: emulator + local control plane + controller + a sample BgpPeer that goes Ready.
demo:
	hack/demo.sh $(DEMO_ARGS)

## test: everything CI runs (lint, generated-file drift, unit, control plane, SDK tests).
test:
	hack/test.sh

## lint: rustfmt and clippy, warnings are errors.
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

## crds: regenerate the CRD YAML from the Rust types.
crds:
	$(CARGO) run -q -- crd --output-dir crds

## check-generated: fail when a generated file is stale.
check-generated: crds
	git diff --exit-code -- crds/

## tools: build kube-apiserver, etcd, kubectl and helm (cached under ~/.cache).
tools:
	hack/build-tools.sh

## sdk-setup: install the pinned official Alibaba SDKs (Python, Node) under target/sdk.
sdk-setup:
	hack/sdk-setup.sh

build:
	$(CARGO) build --all-targets

unit:
	$(CARGO) test --lib

## docs: regenerate the README's error tables from the code.
docs:
	$(CARGO) run -q -- docs --readme README.md
