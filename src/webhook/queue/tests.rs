//! The queue against a scripted notifier: order, coalescing, budgets, bounds, drain.

use super::*;
use crate::job::outcome::JobOutcome;
use crate::job::spec::WebhookEventKind;
use std::sync::Mutex;

/// Records what it was asked to send; each delivery takes `delay`. Deliveries to
/// `hang.example` take an hour; to `down.example` they fail after every attempt allowed.
struct Recorder {
    sent: Mutex<Vec<(String, String)>>,
    delay: Duration,
}

#[async_trait::async_trait]
impl Notifier for Recorder {
    async fn notify_within(
        &self,
        hook: &ValidWebhook,
        event: WebhookEvent,
        attempts: Option<u32>,
    ) -> WebhookReport {
        if hook.url.contains("hang.example") {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        tokio::time::sleep(self.delay).await;
        let name = match event.sequence {
            Some(step) => format!("{}:{step}", event.type_name()),
            None => event.type_name().to_owned(),
        };
        self.sent.lock().unwrap().push((event.job_id.clone(), name));
        let delivered = !hook.url.contains("down.example");
        WebhookReport {
            delivered,
            attempts: if delivered { 1 } else { attempts.unwrap_or(5) },
            last_status: Some(if delivered { 200 } else { 503 }),
            error: None,
        }
    }
}

fn hook_to(url: &str) -> ValidWebhook {
    ValidWebhook {
        url: url.into(),
        events: vec![WebhookEventKind::Completed, WebhookEventKind::Progress],
    }
}

fn hook() -> ValidWebhook {
    hook_to("https://shop.example/hooks")
}

fn limits(per_receiver: usize) -> QueueLimits {
    QueueLimits {
        receivers: 8,
        per_receiver,
        progress_attempts: 5,
    }
}

fn recorder(delay: Duration) -> Arc<Recorder> {
    Arc::new(Recorder {
        sent: Mutex::new(Vec::new()),
        delay,
    })
}

fn sent(rec: &Recorder, job: &str) -> Vec<String> {
    rec.sent
        .lock()
        .unwrap()
        .iter()
        .filter(|(j, _)| j == job)
        .map(|(_, k)| k.clone())
        .collect()
}

#[tokio::test]
async fn a_hanging_receiver_delays_only_its_own_events() {
    let rec = recorder(Duration::ZERO);
    let queue = WebhookQueue::start(rec.clone(), limits(16));
    let hanging = hook_to("https://hang.example/hooks");
    assert!(queue.send(&hanging, WebhookEvent::started("slow"), None));
    for job in ["a", "b", "c"] {
        queue.send(&hook(), WebhookEvent::started(job), None);
        queue.send(
            &hook(),
            WebhookEvent::finished(&JobOutcome::started(job)),
            None,
        );
    }
    for job in ["a", "b", "c"] {
        assert!(
            queue.job_settled(job, Duration::from_secs(2)).await,
            "{job} waited behind another receiver"
        );
    }
    assert!(!queue.job_settled("slow", Duration::ZERO).await);
}

#[tokio::test]
async fn a_waiting_progress_event_is_replaced_by_the_jobs_next_one() {
    let rec = recorder(Duration::from_millis(100));
    let queue = WebhookQueue::start(rec.clone(), limits(16));
    queue.send(&hook(), WebhookEvent::started("j"), None);
    for step in 1..=4 {
        queue.send(&hook(), WebhookEvent::progress("j", step, 4), None);
    }
    queue.send(
        &hook(),
        WebhookEvent::finished(&JobOutcome::started("j")),
        None,
    );
    assert!(queue.job_settled("j", Duration::from_secs(5)).await);
    assert_eq!(
        sent(&rec, "j"),
        ["job.started", "job.progress:4", "job.completed"]
    );
}

#[tokio::test]
async fn the_progress_events_of_a_job_share_one_retry_budget() {
    let rec = recorder(Duration::ZERO);
    let queue = WebhookQueue::start(rec.clone(), limits(16));
    let down = hook_to("https://down.example/hooks");
    for step in 1..=3 {
        queue.send(&down, WebhookEvent::progress("j", step, 3), None);
        assert!(queue.job_settled("j", Duration::from_secs(2)).await);
    }
    assert_eq!(
        sent(&rec, "j"),
        ["job.progress:1"],
        "the first used all five attempts; the rest were not tried"
    );
    queue.send(
        &down,
        WebhookEvent::finished(&JobOutcome::started("j")),
        None,
    );
    assert!(queue.job_settled("j", Duration::from_secs(2)).await);
    assert_eq!(
        sent(&rec, "j").last().map(String::as_str),
        Some("job.completed"),
        "the completion has a budget of its own"
    );
}

#[tokio::test]
async fn events_of_a_job_keep_their_order_and_late_progress_is_dropped() {
    let rec = recorder(Duration::from_millis(5));
    let queue = WebhookQueue::start(rec.clone(), limits(16));
    let done = JobOutcome::started("j");
    assert!(queue.send(&hook(), WebhookEvent::started("j"), None));
    assert!(queue.send(&hook(), WebhookEvent::progress("j", 1, 2), None));
    assert!(queue.send(&hook(), WebhookEvent::finished(&done), None));
    assert!(queue.job_settled("j", Duration::from_secs(5)).await);
    assert!(queue.send(&hook(), WebhookEvent::progress("j", 2, 2), None));
    assert_eq!(queue.drain(Duration::from_secs(5)).await, 0);
    let sent: Vec<String> = rec
        .sent
        .lock()
        .unwrap()
        .iter()
        .map(|(_, k)| k.clone())
        .collect();
    assert_eq!(sent, ["job.started", "job.progress:1", "job.completed"]);
}

#[tokio::test]
async fn a_full_queue_refuses_without_waiting_and_reports_it() {
    let rec = recorder(Duration::from_secs(30));
    let queue = WebhookQueue::start(rec, limits(1));
    let reports = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let mut accepted = 0;
    for i in 0..4 {
        let reports = reports.clone();
        let on_report: OnReport =
            Box::new(move |r| Box::pin(async move { reports.lock().unwrap().push(r) }));
        accepted += usize::from(queue.send(
            &hook(),
            WebhookEvent::started(&format!("j{i}")),
            Some(on_report),
        ));
    }
    assert!(started.elapsed() < Duration::from_secs(1), "never waits");
    assert!(accepted < 4, "bounded");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(reports.lock().unwrap().iter().all(|r| !r.delivered));
    assert!(!reports.lock().unwrap().is_empty());
}

#[tokio::test]
async fn drain_records_what_the_grace_period_left_as_not_delivered() {
    let rec = recorder(Duration::from_millis(300));
    let queue = WebhookQueue::start(rec, limits(16));
    let reports = Arc::new(Mutex::new(Vec::new()));
    for i in 0..3 {
        let reports = reports.clone();
        let on_report: OnReport =
            Box::new(move |r| Box::pin(async move { reports.lock().unwrap().push(r) }));
        queue.send(
            &hook(),
            WebhookEvent::started(&format!("j{i}")),
            Some(on_report),
        );
    }
    let left = queue.drain(Duration::from_millis(100)).await;
    assert!(left >= 2, "{left}");
    assert_eq!(queue.pending(), 0);
    let reports = reports.lock().unwrap();
    assert_eq!(reports.len(), 3);
    assert!(reports[0].delivered, "the delivery in flight completes");
    assert!(!reports[2].delivered && reports[2].error.as_deref().unwrap().contains("shut down"));
}

#[tokio::test]
async fn job_settled_waits_for_that_jobs_events_only() {
    let rec = recorder(Duration::from_millis(100));
    let queue = WebhookQueue::start(rec.clone(), limits(16));
    assert!(queue.job_settled("none", Duration::ZERO).await);
    queue.send(&hook(), WebhookEvent::started("j"), None);
    queue.send(
        &hook(),
        WebhookEvent::finished(&JobOutcome::started("j")),
        None,
    );
    assert!(
        !queue.job_settled("j", Duration::from_millis(10)).await,
        "still on its way"
    );
    assert!(queue.job_settled("j", Duration::from_secs(5)).await);
    assert_eq!(rec.sent.lock().unwrap().len(), 2, "both delivered by then");
}
