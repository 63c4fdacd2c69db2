//! The consumer loop over an in-memory queue and a scripted runner: settlements by outcome, a
//! broken device, shutdown, a hung job, and two jobs in flight.

use super::super::memory_source::MemorySource;
use super::super::run::tests::{ScriptedRunner, RULES};
use super::*;
use crate::intake::runtime::source::BodyError;
use serde_json::json;

const BACKOFF: Backoff = Backoff::new(Duration::from_secs(10), Duration::from_secs(60));

fn opts(rules: RunRules) -> PullOptions {
    PullOptions {
        door: "memory",
        rules,
        backoff: BACKOFF,
        receive_backoff: RECEIVE_BACKOFF,
        depth: 1,
        prefetch: true,
    }
}

/// Run the loop until `settled` deliveries were settled (at most 20 s), or for
/// `stop_after`; then stop it.
async fn consume(source: Arc<MemorySource>, rules: RunRules, until: Until) -> PullReport {
    let stop = CancellationToken::new();
    let runner = Arc::new(ScriptedRunner::default());
    let loop_ = tokio::spawn(run(source.clone(), runner, stop.clone(), opts(rules)));
    match until {
        Until::Stop(after) => tokio::time::sleep(after).await,
        Until::Settled(n) => {
            let started = std::time::Instant::now();
            while source.settled().len() < n && started.elapsed() < Duration::from_secs(20) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    stop.cancel();
    loop_.await.unwrap()
}

enum Until {
    Settled(usize),
    Stop(Duration),
}

#[tokio::test]
async fn each_delivery_is_settled_by_what_came_of_it() {
    let source = Arc::new(MemorySource::with(vec![
        ("ok", Ok(json!({}))),
        ("flaky", Ok(json!({"fail": "input_fetch_failed"}))),
        ("bad", Ok(json!({"fail": "invalid_input"}))),
        ("poison", Err(BodyError::Poison("not JSON".into()))),
        ("later", Err(BodyError::Unavailable("s3 timeout".into()))),
    ]));
    let report = consume(source.clone(), RULES, Until::Settled(5)).await;
    assert_eq!(
        source.settled(),
        [
            ("ok".to_owned(), Settlement::Ack),
            (
                "flaky".to_owned(),
                Settlement::RetryLater(Duration::from_secs(10))
            ),
            ("bad".to_owned(), Settlement::Ack),
            ("poison".to_owned(), Settlement::DeadLetter),
            (
                "later".to_owned(),
                Settlement::RetryLater(Duration::from_secs(10))
            ),
        ]
    );
    assert_eq!(
        (
            report.jobs,
            report.acked,
            report.retried,
            report.dead_lettered
        ),
        (3, 2, 2, 1)
    );
    assert!(!report.device_broken);
}

#[tokio::test]
async fn a_broken_device_stops_the_loop_and_the_prefetched_delivery_goes_back() {
    let source = Arc::new(MemorySource::with(vec![
        (
            "breaks",
            Ok(json!({"ms": 50, "fail": "generation_failed", "break_device": true})),
        ),
        ("next", Ok(json!({}))),
        ("after", Ok(json!({}))),
    ]));
    let runner = Arc::new(ScriptedRunner::default());
    let stop = CancellationToken::new();
    let report = run(source.clone(), runner.clone(), stop, opts(RULES)).await;
    assert!(report.device_broken, "the loop ends on its own");
    assert_eq!(
        *runner.ran.lock().unwrap(),
        ["breaks"],
        "no job runs after the fault"
    );
    assert_eq!(
        source.settled(),
        [
            (
                "breaks".to_owned(),
                Settlement::RetryLater(Duration::from_secs(10))
            ),
            ("next".to_owned(), Settlement::Release),
        ]
    );
    assert_eq!(source.left(), 1);
}

#[tokio::test]
async fn shutdown_cancels_after_the_grace_and_releases_the_job() {
    let source = Arc::new(MemorySource::with(vec![
        ("long", Ok(json!({"ms": 60_000}))),
        ("queued", Ok(json!({}))),
    ]));
    let report = consume(
        source.clone(),
        RULES,
        Until::Stop(Duration::from_millis(100)),
    )
    .await;
    assert_eq!(
        source.settled(),
        [
            ("long".to_owned(), Settlement::Release),
            ("queued".to_owned(), Settlement::Release),
        ]
    );
    assert_eq!(report.released, 2);
}

#[tokio::test]
async fn a_job_that_hangs_past_its_deadline_is_abandoned_and_the_next_one_runs() {
    let source = Arc::new(MemorySource::with(vec![
        ("hung", Ok(json!({"ms": 60_000, "hang": true}))),
        ("next", Ok(json!({}))),
    ]));
    let rules = RunRules {
        job_timeout: Some(Duration::from_millis(50)),
        ..RULES
    };
    let report = consume(source.clone(), rules, Until::Settled(2)).await;
    assert_eq!(
        source.settled(),
        [
            ("hung".to_owned(), Settlement::Abandon),
            ("next".to_owned(), Settlement::Ack),
        ]
    );
    assert_eq!(report.abandoned, 1);
}

#[tokio::test]
async fn with_depth_two_a_second_job_runs_while_the_first_finishes_and_each_is_settled() {
    let source = Arc::new(MemorySource::with(vec![
        ("a", Ok(json!({"ms": 200}))),
        ("b", Ok(json!({"ms": 200}))),
        ("c", Ok(json!({"ms": 200, "fail": "input_fetch_failed"}))),
    ]));
    let runner = Arc::new(ScriptedRunner::default());
    let stop = CancellationToken::new();
    let loop_ = tokio::spawn(run(
        source.clone(),
        runner.clone(),
        stop.clone(),
        PullOptions {
            depth: 2,
            ..opts(RULES)
        },
    ));
    let started = std::time::Instant::now();
    while source.settled().len() < 3 && started.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.cancel();
    let report = loop_.await.unwrap();
    assert_eq!(
        runner.max_running.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "two jobs overlapped, never three"
    );
    let mut settled = source.settled();
    settled.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        settled,
        [
            ("a".to_owned(), Settlement::Ack),
            ("b".to_owned(), Settlement::Ack),
            (
                "c".to_owned(),
                Settlement::RetryLater(Duration::from_secs(10))
            ),
        ]
    );
    assert_eq!((report.jobs, report.acked, report.retried), (3, 2, 1));
}
