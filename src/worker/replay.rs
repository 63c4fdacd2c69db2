//! `result.json`: written last, read first. A redelivered job whose stored outcome says
//! `succeeded` is answered from it instead of being generated again (with fresh URLs and its
//! completion webhook sent again), unless a different job used the same id.

use super::Worker;
use crate::error::{ErrorCode, JobError};
use crate::job::JobOutcome;
use crate::job::ValidJob;
use crate::output::{keys, OutputError, OutputSink};
use crate::webhook::WebhookEvent;

impl Worker {
    /// The answer to a redelivery of a job that already succeeded: its stored outcome, or
    /// `job_id_conflict` when the stored job is not this one. `None`: run the job.
    pub(super) async fn replay(
        &self,
        job: &ValidJob,
        sink: &dyn OutputSink,
    ) -> Option<Result<JobOutcome, JobError>> {
        let mut stored = load_succeeded(sink, &job.id).await?;
        if stored
            .job_sha256
            .as_ref()
            .is_some_and(|theirs| *theirs != job.spec_sha256)
        {
            return Some(Err(JobError {
                field: Some("id".to_owned()),
                ..JobError::new(
                    ErrorCode::JobIdConflict,
                    "id: a different job with this id has already succeeded; give each job its own id",
                )
            }));
        }
        tracing::info!(job_id = %job.id, "already succeeded; answering from result.json");
        refresh_urls(sink, &mut stored).await;
        stored.replayed = true;
        if let Some(hook) = &job.webhook {
            self.parts
                .webhooks
                .send(hook, WebhookEvent::finished(&stored), None);
        }
        Some(Ok(stored))
    }
}

/// The stored outcome of `job_id`, only when it exists, parses, is for this job and says
/// `succeeded`. Anything else (absent, unreadable, failed, corrupt) means "run the job", so a
/// read failure is logged and treated as absent rather than failing the delivery.
pub async fn load_succeeded(sink: &dyn OutputSink, job_id: &str) -> Option<JobOutcome> {
    if !sink.persistent() {
        return None;
    }
    let key = keys::result(job_id);
    let bytes = match sink.get(&key).await {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return None,
        Err(e) => {
            tracing::warn!(job_id, error = %e, "could not read result.json; running the job");
            return None;
        }
    };
    match serde_json::from_slice::<JobOutcome>(&bytes) {
        Ok(outcome) if outcome.succeeded() && outcome.id == job_id => Some(outcome),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(job_id, error = %e, "stored result.json does not parse; running the job");
            None
        }
    }
}

/// Give every stored file of a replayed `outcome` a fresh URL (presigned URLs expire). A URL
/// that cannot be renewed keeps the old one (logged).
pub(crate) async fn refresh_urls(sink: &dyn OutputSink, outcome: &mut JobOutcome) {
    let keys = outcome
        .images
        .iter_mut()
        .map(|i| (&i.key, &mut i.url))
        .chain(outcome.mockups.iter_mut().map(|m| (&m.key, &mut m.url)));
    for (key, url) in keys {
        if url.is_none() {
            continue;
        }
        match sink.fresh_url(key).await {
            Ok(Some(fresh)) => *url = Some(fresh),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "could not renew a stored file's URL; the old one is returned")
            }
        }
    }
}

/// Store `outcome` as `{id}/result.json` (pretty JSON). Does nothing for sinks that keep
/// nothing (`inline`).
pub async fn store_result(sink: &dyn OutputSink, outcome: &JobOutcome) -> Result<(), OutputError> {
    if !sink.persistent() {
        return Ok(());
    }
    let mut stored = outcome.clone();
    // The flag describes one delivery's answer, not the stored fact.
    stored.replayed = false;
    let bytes = serde_json::to_vec_pretty(&stored).expect("a JobOutcome always serializes");
    sink.put(&keys::result(&outcome.id), bytes, "application/json")
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::JobError;
    use crate::job::JobStatus;
    use crate::output::{InlineSink, LocalSink};

    fn ok_outcome(id: &str) -> JobOutcome {
        let mut o = JobOutcome::failed(id, JobError::internal("x"));
        o.status = JobStatus::Succeeded;
        o.error = None;
        o.seed = Some(7);
        o
    }

    #[tokio::test]
    async fn store_then_load_returns_succeeded_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let sink = LocalSink::new(dir.path());
        assert_eq!(load_succeeded(&sink, "j1").await, None);
        store_result(&sink, &ok_outcome("j1")).await.unwrap();
        assert_eq!(load_succeeded(&sink, "j1").await, Some(ok_outcome("j1")));
    }

    #[tokio::test]
    async fn load_ignores_failed_corrupt_and_foreign_results() {
        let dir = tempfile::tempdir().unwrap();
        let sink = LocalSink::new(dir.path());
        store_result(&sink, &JobOutcome::failed("j1", JobError::internal("x")))
            .await
            .unwrap();
        assert_eq!(load_succeeded(&sink, "j1").await, None);
        sink.put("j2/result.json", b"{not json".to_vec(), "application/json")
            .await
            .unwrap();
        assert_eq!(load_succeeded(&sink, "j2").await, None);
        let foreign = serde_json::to_vec(&ok_outcome("other")).unwrap();
        sink.put("j3/result.json", foreign, "application/json")
            .await
            .unwrap();
        assert_eq!(load_succeeded(&sink, "j3").await, None);
    }

    #[tokio::test]
    async fn inline_sink_stores_and_loads_nothing() {
        let sink = InlineSink::new(10);
        store_result(&sink, &ok_outcome("j1")).await.unwrap();
        assert_eq!(sink.used(), 0);
        assert_eq!(load_succeeded(&sink, "j1").await, None);
    }
}
