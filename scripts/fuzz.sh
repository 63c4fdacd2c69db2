#!/usr/bin/env bash
# `make fuzz`: fuzz event detection and job parsing with cargo-fuzz (libFuzzer). cargo-fuzz needs
# nightly flags; RUSTC_BOOTSTRAP lets the stable toolchain accept them. Seeds come from events/.
# FUZZ_SECONDS (default 300) bounds the run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
mkdir -p fuzz/corpus/parse_job
cp events/*.json fuzz/corpus/parse_job/ 2>/dev/null || true
export RUSTC_BOOTSTRAP=1
cargo fuzz run parse_job fuzz/corpus/parse_job -- -max_total_time="${FUZZ_SECONDS:-300}" -max_len=65536
