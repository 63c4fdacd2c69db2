//! One job on any door: the deadline, the shutdown grace period, cancelling, giving up, and the
//! broken-device check, written once.
//!
//! - The job's deadline is the earliest of the door's own (`JobRequest::deadline`: a Lambda
//!   function's remaining time, RunPod's or the endpoint API's `policy.executionTimeout`) and
//!   `RunRules::job_timeout` counted from when the door received it. At the deadline the job is
//!   cancelled between steps and ends as `timeout` (the worker names the code; its completion
//!   webhook says the same).
//! - Once shutdown starts, the job in flight gets `grace` to finish, then it is cancelled.
//! - A cancelled job that does not stop within `wind_down` is given up: the door settles it
//!   without an outcome (a queue hands it out again, or lets it reach its dead-letter queue).
//! - After every job, a broken device is reported once, and `Ran::stop_taking` tells the door
//!   to take no more jobs (RunPod asks for the worker to be replaced; the other doors stop and
//!   exit non-zero so their supervisor starts a fresh one).

use super::runner::JobRunner;
use crate::error::{ErrorCode, JobError};
use crate::job::outcome::{JobOutcome, Timings};
use crate::metrics::JobEnd;
use crate::worker::JobRequest;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How a door runs its jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunRules {
    /// The door's name, in logs and metrics (`sqs`, `runpod`, `serve`, `lambda`, `invoke`).
    pub door: &'static str,
    /// Longest a job may take from when the door received it (`MERCHGEN_JOB_TIMEOUT`); `None`:
    /// only the door's own deadline, if any.
    pub(crate) job_timeout: Option<Duration>,
    /// Time the job in flight gets to finish once shutdown starts (`MERCHGEN_SHUTDOWN_GRACE_SECS`).
    pub grace: Duration,
    /// After cancelling a job, how long it may take to stop (at its next step) before it is
    /// given up.
    pub(crate) wind_down: Duration,
    /// Hold the job until its webhooks are delivered (or given up) before settling it: for
    /// doors whose process may be frozen or end once the job is answered (Lambda, `invoke`).
    /// Elsewhere the slot is free once the outputs and `result.json` are stored, and a
    /// delivery's fate is recorded in `result.json` later.
    pub(crate) await_webhooks: bool,
}

impl RunRules {
    /// Time a cancelled job gets to stop.
    pub(crate) const WIND_DOWN: Duration = Duration::from_secs(5);

    /// `door`'s rules: `MERCHGEN_JOB_TIMEOUT` (0: none) and `MERCHGEN_SHUTDOWN_GRACE_SECS`.
    pub fn from_config(config: &crate::config::Config, door: &'static str) -> Self {
        RunRules {
            door,
            job_timeout: (config.job_timeout_secs > 0)
                .then(|| Duration::from_secs(config.job_timeout_secs)),
            grace: Duration::from_secs(config.shutdown_grace_secs),
            wind_down: Self::WIND_DOWN,
            await_webhooks: matches!(door, "lambda" | "invoke"),
        }
    }

    /// The one settle-deadline rule: how long a door may keep trying to report a job's result
    /// once shutdown started (or for a job it took and never started): the grace period, at
    /// least 5 s, so a zero grace still lets one report out.
    pub(crate) fn settle_window(&self) -> Duration {
        self.grace.max(Duration::from_secs(5))
    }
}

/// Why a job was given up without an outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GaveUp {
    /// It passed its deadline and did not stop when cancelled: it may be hung.
    Deadline,
    /// Shutdown: the grace period ran out and it did not stop when cancelled.
    Shutdown,
}

impl GaveUp {
    /// The failure a job given up for this reason ends with.
    fn error(self) -> JobError {
        match self {
            GaveUp::Deadline => JobError::new(
                ErrorCode::Timeout,
                "the job passed its deadline and did not stop when cancelled",
            ),
            GaveUp::Shutdown => JobError::new(
                ErrorCode::Cancelled,
                "the worker shut down and the job did not stop in time; send it again",
            ),
        }
    }
}

/// How the job ended.
// One per job and moved once: boxing the outcome would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Ending {
    /// With an outcome (which may be a failure, `timeout` or `cancelled` among them).
    Finished(JobOutcome),
    /// Without one (see [`GaveUp`]).
    GaveUp(GaveUp),
}

/// What running one job came to.
#[derive(Debug)]
pub(crate) struct Ran {
    pub ending: Ending,
    /// The device may be unusable: the door must take no more jobs.
    pub(crate) stop_taking: bool,
    /// Shutdown had started by the time the job ended.
    pub(crate) shutting_down: bool,
}

impl Ran {
    /// The outcome; a job given up becomes a failure of job `id`: `timeout` past its
    /// deadline, `cancelled` (retryable) at shutdown.
    pub(crate) fn into_outcome(self, id: &str) -> JobOutcome {
        match self.ending {
            Ending::Finished(outcome) => outcome,
            Ending::GaveUp(why) => JobOutcome::failed(id, why.error()),
        }
    }

    /// The outcome, when the job ended with one.
    #[cfg(test)]
    pub(crate) fn outcome(&self) -> Option<&JobOutcome> {
        match &self.ending {
            Ending::Finished(outcome) => Some(outcome),
            Ending::GaveUp(_) => None,
        }
    }
}

/// How the metrics count an ending.
fn job_end(ending: &Ending) -> JobEnd {
    match ending {
        Ending::Finished(outcome) => JobEnd::Outcome {
            code: outcome.error.as_ref().map(|e| e.code.as_str().to_owned()),
            stages_ms: outcome
                .timings_ms
                .as_ref()
                .map(Timings::stages)
                .unwrap_or_default(),
        },
        Ending::GaveUp(_) => JobEnd::GivenUp,
    }
}

/// Run one job under its deadline and the shutdown grace period (see the module header).
pub(crate) async fn run_job(
    runner: &dyn JobRunner,
    mut req: JobRequest,
    shutdown: &CancellationToken,
    rules: &RunRules,
) -> Ran {
    let timeout_at = rules.job_timeout.map(|t| req.received + t);
    req.deadline = match (req.deadline, timeout_at) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let deadline = req.deadline;
    let cancel = req.cancel.clone();
    let cancel_now = move || cancel.store(true, Ordering::Relaxed);
    let metrics = crate::metrics::global();
    metrics.started(rules.door);
    // What announcing the job needs if it is given up (its own run then never announces it).
    let (job_id, webhook) = (req.job_id(), req.body.get("webhook").cloned());
    let (attempt, retried) = (req.attempt, req.retried_on_failure);
    let mut job = runner.handle(req);
    let grace_over = async {
        shutdown.cancelled().await;
        tracing::info!(
            grace_secs = rules.grace.as_secs(),
            "shutting down: the job in flight may finish within the grace period"
        );
        tokio::time::sleep(rules.grace).await;
    };
    let ending = tokio::select! {
        outcome = &mut job => Ending::Finished(outcome),
        () = until(deadline) => {
            tracing::warn!("the job reached its deadline: cancelling it");
            cancel_now();
            wind_down(job, rules.wind_down, GaveUp::Deadline).await
        }
        () = grace_over => {
            tracing::warn!("grace period over: cancelling the job in flight");
            cancel_now();
            wind_down(job, rules.wind_down, GaveUp::Shutdown).await
        }
    };
    if let Ending::GaveUp(why) = &ending {
        let outcome = JobOutcome::failed(job_id.clone(), why.error());
        runner.announce_given_up(webhook.as_ref(), &outcome, attempt, retried);
    }
    let settled_id = match &ending {
        Ending::Finished(outcome) => outcome.id.clone(),
        Ending::GaveUp(_) => job_id,
    };
    if rules.await_webhooks {
        // Settle only once the job's webhooks went out (a frozen or ended process would not
        // send them), within what is left of the deadline: the engine is free already.
        let left = deadline.map_or(WEBHOOK_WAIT, |d| {
            d.saturating_duration_since(Instant::now())
                .min(WEBHOOK_WAIT)
        });
        if !runner.webhooks_settled(&settled_id, left).await {
            tracing::warn!(job_id = %settled_id, waited_ms = left.as_millis() as u64, "webhook deliveries still pending; settling the job anyway");
        }
    }
    metrics.ended(rules.door, job_end(&ending));
    let stop_taking = runner.device_broken();
    if stop_taking {
        tracing::error!(
            "the device may be unusable after this job: this worker takes no more jobs"
        );
    }
    Ran {
        ending,
        stop_taking,
        shutting_down: shutdown.is_cancelled(),
    }
}

/// Longest a door waits for a finished job's webhooks before settling it.
pub(crate) const WEBHOOK_WAIT: Duration = Duration::from_secs(120);

/// Sleep until `deadline`; never, without one.
async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// A cancelled job: its outcome if it stops within `wait`, else given up.
async fn wind_down(
    job: Pin<Box<dyn Future<Output = JobOutcome> + Send + '_>>,
    wait: Duration,
    why: GaveUp,
) -> Ending {
    match tokio::time::timeout(wait, job).await {
        Ok(outcome) => Ending::Finished(outcome),
        Err(_) => {
            tracing::error!(reason = ?why, wind_down_secs = wait.as_secs(), "the cancelled job did not stop: giving it up");
            Ending::GaveUp(why)
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::job::JobStatus;
    use std::sync::atomic::AtomicBool;

    /// A runner whose jobs say what they do: `{"ms": N}` works N milliseconds in 5 ms steps
    /// (stopping at a cancel, as the engine does between denoising steps, and ending as the
    /// worker would: `timeout` past its deadline, else `cancelled`); `"hang": true` ignores
    /// cancels; `"fail": "code"` fails with that code; `"break_device": true` breaks the device.
    #[derive(Default)]
    pub(crate) struct ScriptedRunner {
        pub broken: AtomicBool,
        pub ran: std::sync::Mutex<Vec<String>>,
        /// Jobs running now, and the most at once.
        pub running: std::sync::atomic::AtomicUsize,
        pub(crate) max_running: std::sync::atomic::AtomicUsize,
    }

    #[async_trait::async_trait]
    impl JobRunner for ScriptedRunner {
        async fn handle(&self, req: JobRequest) -> JobOutcome {
            self.ran.lock().unwrap().push(req.delivery_id.clone());
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_running.fetch_max(now, Ordering::SeqCst);
            let outcome = self.script(&req).await;
            self.running.fetch_sub(1, Ordering::SeqCst);
            outcome
        }

        fn device_broken(&self) -> bool {
            self.broken.load(Ordering::Relaxed)
        }

        async fn webhooks_settled(&self, _: &str, _: Duration) -> bool {
            true
        }
    }

    impl ScriptedRunner {
        async fn script(&self, req: &JobRequest) -> JobOutcome {
            let ms = req.body["ms"].as_u64().unwrap_or(0);
            let hang = req.body["hang"].as_bool().unwrap_or(false);
            let started = Instant::now();
            while started.elapsed() < Duration::from_millis(ms) {
                if req.cancel.load(Ordering::Relaxed) && !hang {
                    let code = match req.deadline {
                        Some(d) if Instant::now() >= d => ErrorCode::Timeout,
                        _ => ErrorCode::Cancelled,
                    };
                    return JobOutcome::failed(&req.delivery_id, JobError::new(code, "stopped"));
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            if req.body["break_device"].as_bool() == Some(true) {
                self.broken.store(true, Ordering::Relaxed);
            }
            if let Some(code) = req.body["fail"].as_str() {
                let code: ErrorCode = serde_json::from_value(code.into()).unwrap();
                return JobOutcome::failed(&req.delivery_id, JobError::new(code, "scripted"));
            }
            let mut ok = JobOutcome::started(req.delivery_id.clone());
            ok.status = JobStatus::Succeeded;
            ok
        }
    }

    pub(crate) const RULES: RunRules = RunRules {
        door: "test",
        job_timeout: None,
        grace: Duration::from_millis(200),
        wind_down: Duration::from_millis(200),
        await_webhooks: false,
    };

    fn job(body: serde_json::Value) -> JobRequest {
        JobRequest::new(body, "j1")
    }

    fn code(ran: &Ran) -> Option<ErrorCode> {
        ran.outcome().and_then(|o| o.error.as_ref()).map(|e| e.code)
    }

    #[tokio::test]
    async fn a_job_within_its_limits_finishes() {
        let runner = ScriptedRunner::default();
        let ran = run_job(
            &runner,
            job(serde_json::json!({"ms": 20})),
            &CancellationToken::new(),
            &RULES,
        )
        .await;
        assert!(ran.outcome().unwrap().succeeded());
        assert!(!ran.stop_taking && !ran.shutting_down);
    }

    #[tokio::test]
    async fn the_job_timeout_cancels_between_steps_and_ends_as_timeout() {
        let runner = ScriptedRunner::default();
        let rules = RunRules {
            job_timeout: Some(Duration::from_millis(50)),
            ..RULES
        };
        let started = Instant::now();
        let ran = run_job(
            &runner,
            job(serde_json::json!({"ms": 60_000})),
            &CancellationToken::new(),
            &rules,
        )
        .await;
        assert_eq!(code(&ran), Some(ErrorCode::Timeout));
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "cancelled long before the job's own end"
        );
    }

    #[tokio::test]
    async fn the_earlier_of_the_doors_deadline_and_the_job_timeout_wins() {
        let runner = ScriptedRunner::default();
        let rules = RunRules {
            job_timeout: Some(Duration::from_secs(3600)),
            ..RULES
        };
        let mut req = job(serde_json::json!({"ms": 60_000}));
        req.deadline = Some(Instant::now() + Duration::from_millis(50));
        let ran = run_job(&runner, req, &CancellationToken::new(), &rules).await;
        assert_eq!(code(&ran), Some(ErrorCode::Timeout));
    }

    #[tokio::test]
    async fn a_hung_job_past_its_deadline_is_given_up() {
        let runner = ScriptedRunner::default();
        let rules = RunRules {
            job_timeout: Some(Duration::from_millis(30)),
            ..RULES
        };
        let ran = run_job(
            &runner,
            job(serde_json::json!({"ms": 60_000, "hang": true})),
            &CancellationToken::new(),
            &rules,
        )
        .await;
        assert!(matches!(ran.ending, Ending::GaveUp(GaveUp::Deadline)));
    }

    #[tokio::test]
    async fn shutdown_gives_the_job_its_grace_then_cancels_it() {
        let runner = ScriptedRunner::default();
        let stop = CancellationToken::new();
        stop.cancel();
        // Shorter than the grace: finishes.
        let ran = run_job(&runner, job(serde_json::json!({"ms": 50})), &stop, &RULES).await;
        assert!(ran.outcome().unwrap().succeeded() && ran.shutting_down);
        // Longer: cancelled after the grace, stops at its next step.
        let ran = run_job(
            &runner,
            job(serde_json::json!({"ms": 60_000})),
            &stop,
            &RULES,
        )
        .await;
        assert_eq!(code(&ran), Some(ErrorCode::Cancelled));
        // Ignores the cancel: given up.
        let ran = run_job(
            &runner,
            job(serde_json::json!({"ms": 60_000, "hang": true})),
            &stop,
            &RULES,
        )
        .await;
        assert!(matches!(ran.ending, Ending::GaveUp(GaveUp::Shutdown)));
    }

    #[tokio::test]
    async fn a_broken_device_tells_the_door_to_stop_taking_jobs() {
        let runner = ScriptedRunner::default();
        let ran = run_job(
            &runner,
            job(serde_json::json!({"fail": "generation_failed", "break_device": true})),
            &CancellationToken::new(),
            &RULES,
        )
        .await;
        assert_eq!(code(&ran), Some(ErrorCode::GenerationFailed));
        assert!(ran.stop_taking);
    }
}
