//! Under `make test` a missing peer is a failure, not a pass: `scripts/test.sh` sets
//! `MERCHGEN_REQUIRE_PEERS=1`, and then the tests' peer look-ups panic instead of skipping.
//! This binary's one test sets its own environment (no other test shares the process).

#[path = "integration/support/peers.rs"]
mod peers;

#[test]
fn peer_lookup_missing_peer_fails_when_required_and_skips_otherwise() {
    std::env::remove_var("MERCHGEN_TEST_S3_ENDPOINT");
    std::env::set_var("MERCHGEN_VENV", "no-such-venv-dir");
    std::env::set_var("MERCHGEN_REQUIRE_PEERS", "1");
    assert!(std::panic::catch_unwind(peers::moto_endpoint).is_err());
    assert!(std::panic::catch_unwind(|| peers::venv_bin("cargo-lambda")).is_err());

    std::env::set_var("MERCHGEN_REQUIRE_PEERS", "0");
    assert_eq!(peers::moto_endpoint(), None);
    assert_eq!(peers::venv_bin("cargo-lambda"), None);

    std::env::set_var("MERCHGEN_TEST_S3_ENDPOINT", "http://127.0.0.1:1");
    std::env::set_var("MERCHGEN_REQUIRE_PEERS", "1");
    assert_eq!(
        peers::moto_endpoint().as_deref(),
        Some("http://127.0.0.1:1")
    );
}
