//! The peers integration tests need (moto's S3/SQS server, the Python clients and tools in
//! `./.venv`), and what happens when one is missing. Under `make test` (`scripts/test.sh` sets
//! `MERCHGEN_REQUIRE_PEERS=1`, and CI runs `make test`) a missing peer fails the test: a suite
//! that passes because it skipped proves nothing. Under a plain `cargo test` the test says
//! SKIPPED loudly and passes.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// True when missing peers must fail the tests (`MERCHGEN_REQUIRE_PEERS=1`).
pub(crate) fn required() -> bool {
    std::env::var("MERCHGEN_REQUIRE_PEERS").is_ok_and(|v| v.trim() == "1")
}

/// Report a missing `peer`: panic when peers are required, else a loud SKIPPED note.
/// `how` says how to provide it.
pub(crate) fn missing(peer: &str, how: &str) {
    let note = format!("{peer} is missing; {how}");
    if required() {
        panic!("MERCHGEN_REQUIRE_PEERS=1 and {note}");
    }
    eprintln!("SKIPPED: {note} (set MERCHGEN_REQUIRE_PEERS=1 to make this a failure)");
}

/// The variables the AWS SDK clients of the tests need to talk to moto (any values do; set,
/// they keep the SDK's chains from looking further). `scripts/test.sh` exports them: the tests
/// never change the process's environment, which every test in the binary shares.
pub(crate) const AWS_TEST_ENV: [&str; 4] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION",
    "AWS_EC2_METADATA_DISABLED",
];

/// moto's endpoint (`MERCHGEN_TEST_S3_ENDPOINT`, with `AWS_TEST_ENV` set), or `None` after
/// `missing` said so.
pub(crate) fn moto_endpoint() -> Option<String> {
    match std::env::var("MERCHGEN_TEST_S3_ENDPOINT") {
        Ok(endpoint) if !endpoint.is_empty() => {
            if let Some(unset) = AWS_TEST_ENV.iter().find(|v| std::env::var_os(v).is_none()) {
                missing(
                    &format!("{unset} (the SDK's dummy credentials for moto)"),
                    "export the AWS_* variables scripts/test.sh exports",
                );
                return None;
            }
            Some(endpoint)
        }
        _ => {
            missing(
                "the S3/SQS server (MERCHGEN_TEST_S3_ENDPOINT)",
                "start moto with `scripts/moto.sh start` and export its endpoint (make test does)",
            );
            None
        }
    }
}

/// The test virtual environment (`MERCHGEN_VENV`, else `./.venv` of the repository).
pub(crate) fn venv() -> PathBuf {
    match std::env::var_os("MERCHGEN_VENV").filter(|v| !v.is_empty()) {
        Some(dir) => Path::new(env!("CARGO_MANIFEST_DIR")).join(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv"),
    }
}

/// `name` from the test virtual environment's `bin/`, or `None` after `missing` said so.
pub(crate) fn venv_bin(name: &str) -> Option<PathBuf> {
    let path = venv().join("bin").join(name);
    if path.is_file() {
        return Some(path);
    }
    missing(
        &path.display().to_string(),
        "`make test` installs tests/python/requirements.txt into ./.venv",
    );
    None
}

/// A command-line tool from the system's packages (`qpdf`, `gs`, `rsvg-convert`), found on
/// `PATH`, or `None` after `missing` said so.
pub(crate) fn tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    if let Some(found) = std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
    {
        return Some(found);
    }
    missing(
        name,
        "`make test` installs qpdf, ghostscript and librsvg2-bin (scripts/print-tools.sh)",
    );
    None
}
