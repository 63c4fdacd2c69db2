//! The local door: `merchgen invoke FILE` runs the jobs of one event file (a bare job, a RunPod
//! job, a Lambda direct event or an SQS event batch, detected by shape) and prints the outcome.
//! SQS batches go through the record handling the Lambda door uses (`sqs_batch`: claim checks,
//! poison messages, the same `batchItemFailures`), so a sample event behaves here as it would on
//! Lambda.

use crate::backoff::Backoff;
use crate::error::JobError;
use crate::intake::runtime::source::{self, Settlement};
use crate::intake::runtime::{self, RunRules};
use crate::intake::sqs_batch::{BatchRunner, RecordResult};
use crate::job::outcome::JobOutcome;
use crate::job::parse::{self, EventJob, EventShape};
use crate::worker::{JobRequest, Worker};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// An event file, parsed into its shape and jobs.
pub(crate) struct EventFile {
    pub shape: EventShape,
    pub jobs: Vec<EventJob>,
}

/// Read and detect the shape; an unreadable file is a failed job with a clear error.
pub(crate) fn read_event(bytes: &[u8]) -> Result<EventFile, JobError> {
    let (shape, jobs) = parse::parse_json(bytes).and_then(parse::detect)?;
    Ok(EventFile { shape, jobs })
}

/// Delays do not matter here: only whether a record is reported.
const NO_BACKOFF: Backoff = Backoff::NONE;

/// True when any job of the file may generate (so the model must be loaded): it has a prompt,
/// or its body is only known after reading it (a claim check) or not a job object at all.
pub(crate) fn needs_model(file: &EventFile) -> bool {
    file.jobs.iter().any(|d| {
        d.body.get("prompt").is_some() || d.body.get("s3").is_some() || !d.body.is_object()
    })
}

/// The (product, longest side) pairs the file's jobs ask mockups of, in order, without
/// duplicates (an SQS record's text body is read as well). Read leniently: a malformed `mockups` is the job's error to report, not this.
pub(crate) fn mockups_wanted(file: &EventFile) -> Vec<(String, Option<u32>)> {
    let mut wanted: Vec<(String, Option<u32>)> = Vec::new();
    for d in &file.jobs {
        // An SQS record's body is the job as JSON text.
        let text_body = d
            .body
            .as_str()
            .and_then(|t| serde_json::from_str::<Value>(t).ok());
        let body = text_body.as_ref().unwrap_or(&d.body);
        let Some(mockups) = body.get("mockups") else {
            continue;
        };
        let size = mockups
            .get("size")
            .and_then(Value::as_u64)
            .and_then(|s| u32::try_from(s).ok());
        let products = mockups.get("products").and_then(Value::as_array);
        for product in products.into_iter().flatten().filter_map(Value::as_str) {
            let pair = (product.to_owned(), size);
            if !wanted.contains(&pair) {
                wanted.push(pair);
            }
        }
    }
    wanted
}

/// Run every job of the file in order, each through the door runtime (`MERCHGEN_JOB_TIMEOUT`
/// applies here too); returns (delivery id, outcome) pairs.
pub(crate) async fn run(
    worker: &Worker,
    file: EventFile,
    rules: &RunRules,
) -> Vec<(String, JobOutcome)> {
    let shutdown = CancellationToken::new();
    let mut outcomes = Vec::with_capacity(file.jobs.len());
    for d in file.jobs {
        let id = d
            .delivery_id
            .unwrap_or_else(|| format!("local-{}", uuid::Uuid::new_v4()));
        let req = JobRequest::new(d.body, id.clone());
        let ran = Box::pin(runtime::run_job(worker, req, &shutdown, rules)).await;
        let outcome = ran.into_outcome(&id);
        outcomes.push((id, outcome));
    }
    outcomes
}

/// Run an SQS event batch file as Lambda would (no deadline); returns what `invoke` prints
/// (the outcomes and Lambda's `batchItemFailures`) and whether every record succeeded.
pub(crate) async fn run_sqs_batch(
    runner: &BatchRunner,
    bytes: &[u8],
) -> Result<(Value, bool), JobError> {
    let event: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_slice(bytes)
        .map_err(|e| JobError::invalid("Records", format!("is not an SQS event: {e}")))?;
    let results = runner.records(event.records, None).await;
    let ok = results
        .iter()
        .all(|r| r.outcome.as_ref().is_ok_and(JobOutcome::succeeded));
    Ok((render_records(&results), ok))
}

fn render_records(results: &[RecordResult]) -> Value {
    let outcomes: Vec<Value> = results
        .iter()
        .map(|r| match &r.outcome {
            Ok(outcome) => serde_json::to_value(outcome).unwrap_or(Value::Null),
            Err(why) => serde_json::json!({
                "messageId": r.message_id,
                "settlement": r.settlement.as_str(),
                "reason": why,
            }),
        })
        .collect();
    let failures: Vec<Value> = results
        .iter()
        .filter(|r| r.reported_as_failure())
        .map(|r| serde_json::json!({"itemIdentifier": r.message_id}))
        .collect();
    serde_json::json!({"outcomes": outcomes, "batchItemFailures": failures})
}

/// The JSON printed for the outcomes: one outcome, or for an SQS batch (when the model could not
/// load, so no record ran) the outcomes plus the `batchItemFailures` Lambda would answer, by the
/// queue doors' one rule (`source::after_outcome`).
pub(crate) fn render(shape: EventShape, outcomes: &[(String, JobOutcome)]) -> Value {
    let only: Vec<&JobOutcome> = outcomes.iter().map(|(_, o)| o).collect();
    match (shape, only.as_slice()) {
        (EventShape::SqsBatch, _) => {
            let failures: Vec<Value> = outcomes
                .iter()
                .filter(|(_, o)| source::after_outcome(o, 1, &NO_BACKOFF) != Settlement::Ack)
                .map(|(message_id, _)| serde_json::json!({"itemIdentifier": message_id}))
                .collect();
            serde_json::json!({"outcomes": only, "batchItemFailures": failures})
        }
        (_, [one]) => serde_json::to_value(one).unwrap_or(Value::Null),
        _ => serde_json::to_value(&only).unwrap_or(Value::Null),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mockups_wanted_reads_bare_and_sqs_jobs_once_each() {
        let bare = br#"{"design": {"path": "d.png"}, "mockups": {"products": ["mug", "tshirt", "mug"], "size": 800}}"#;
        let file = read_event(bare).unwrap();
        assert_eq!(
            mockups_wanted(&file),
            vec![
                ("mug".to_owned(), Some(800)),
                ("tshirt".to_owned(), Some(800))
            ]
        );
        let sqs = serde_json::json!({"Records": [
            {"messageId": "m1", "body": r#"{"prompt": "x", "mockups": {"products": ["poster"]}}"#},
            {"messageId": "m2", "body": "not json"},
            {"messageId": "m3", "body": r#"{"prompt": "x", "mockups": {"products": [1, "poster"]}}"#},
        ]});
        let file = read_event(sqs.to_string().as_bytes()).unwrap();
        assert_eq!(mockups_wanted(&file), vec![("poster".to_owned(), None)]);
    }
}
