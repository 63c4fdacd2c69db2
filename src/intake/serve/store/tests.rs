//! The store's state machine, expiry and retention, without I/O.

use super::*;
use serde_json::json;

fn sub(ttl_ms: u64) -> Submission {
    Submission {
        input: json!({"prompt": "x"}),
        webhook: Some("http://hook".into()),
        s3_config: None,
        execution_timeout: Duration::from_secs(60),
        ttl: Duration::from_millis(ttl_ms),
        key: None,
    }
}

#[test]
fn queue_is_bounded_and_claims_in_order() {
    let s = Store::new(2, Duration::from_secs(60));
    s.submit("a".into(), sub(60_000)).unwrap();
    s.submit("b".into(), sub(60_000)).unwrap();
    assert_eq!(s.submit("c".into(), sub(60_000)), Err(QueueFull(2)));
    assert_eq!(s.claim().unwrap().id, "a");
    assert_eq!(
        s.counts(),
        Counts {
            in_queue: 1,
            in_progress: 1
        }
    );
    assert_eq!(s.status("a").unwrap()["status"], "IN_PROGRESS");
    let f = s
        .finish("a", State::Completed, Some(json!({"ok": true})), None)
        .unwrap();
    assert_eq!(
        (f.body["status"].as_str(), f.webhook.as_deref()),
        (Some("COMPLETED"), Some("http://hook"))
    );
    assert!(
        s.finish("a", State::Failed, None, None).is_none(),
        "final states are final"
    );
}

#[test]
fn cancel_queued_and_running_and_purge() {
    let s = Store::new(8, Duration::from_secs(60));
    for id in ["a", "b", "c"] {
        s.submit(id.into(), sub(60_000)).unwrap();
    }
    let running = s.claim().unwrap();
    let (body, fin) = s.cancel("a").unwrap();
    assert_eq!(body["status"], "IN_PROGRESS", "asked to stop, not stopped");
    assert!(fin.is_none() && running.cancel.load(Ordering::Relaxed));
    let fin = s.finish("a", State::Cancelled, None, Some("cancelled".into()));
    assert_eq!(fin.unwrap().state, State::Cancelled, "its outcome decides");
    assert!(
        s.finish("a", State::Completed, None, None).is_none(),
        "stays CANCELLED"
    );
    assert_eq!(s.cancel("b").unwrap().0["status"], "CANCELLED");
    assert_eq!(s.purge().len(), 1);
    assert_eq!(s.status("c").unwrap()["status"], "CANCELLED");
    assert!(s.claim().is_none());
    assert!(s.cancel("nope").is_none());
}

#[test]
fn a_cancel_racing_completion_is_answered_with_the_real_outcome() {
    let s = Store::new(8, Duration::from_secs(60));
    s.submit("a".into(), sub(60_000)).unwrap();
    let running = s.claim().unwrap();
    assert_eq!(s.cancel("a").unwrap().0["status"], "IN_PROGRESS");
    assert!(running.cancel.load(Ordering::Relaxed));
    // Past the point of no return: the job completed anyway, and says so everywhere.
    let fin = s
        .finish(
            "a",
            State::Completed,
            Some(json!({"status": "succeeded"})),
            None,
        )
        .unwrap();
    assert_eq!(fin.body["status"], "COMPLETED");
    assert_eq!(s.status("a").unwrap()["status"], "COMPLETED");
    assert!(s.cancel("a").unwrap().1.is_none(), "a finished job stays");
}

#[test]
fn the_request_body_is_dropped_once_claimed_and_outputs_are_kept_within_a_byte_budget() {
    let s = Store::with_limits(8, Duration::from_secs(60), 100, 1_000);
    for id in ["a", "b", "c"] {
        let mut big = sub(60_000);
        big.input = json!({"prompt": "x".repeat(10_000)});
        s.submit(id.into(), big).unwrap();
        let claimed = s.claim().unwrap();
        assert_eq!(claimed.input["prompt"].as_str().map(str::len), Some(10_000));
        let record_input = s.lock().records[id].submission.input.clone();
        assert_eq!(record_input, Value::Null, "the store kept the body");
        let output = json!({"pad": "y".repeat(400)});
        s.finish(id, State::Completed, Some(output), None).unwrap();
    }
    // Three outputs of about 410 bytes each: the oldest is dropped to stay under 1,000.
    assert!(s.status("a").is_none());
    assert_eq!(s.status("c").unwrap()["status"], "COMPLETED");
    assert!(s.lock().retained <= 1_000);
}

#[test]
fn ttl_expiry_drops_the_job() {
    let s = Store::new(8, Duration::from_secs(60));
    s.submit("a".into(), sub(0)).unwrap();
    assert!(s.status("a").is_none());
    assert!(s.claim().is_none());
    assert_eq!(s.expired(), 1);
}
