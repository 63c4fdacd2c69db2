//! The local door: `merchgen invoke FILE` runs the jobs of one event file (a bare job, a RunPod
//! job, a Lambda direct event or an SQS event batch, detected by shape) and prints the outcome.

use crate::error::JobError;
use crate::job::outcome::JobOutcome;
use crate::job::parse::{self, Delivery, EventShape};
use crate::worker::{JobRequest, Worker};
use serde_json::Value;

/// An event file, parsed into its shape and jobs.
pub struct EventFile {
    pub shape: EventShape,
    pub deliveries: Vec<Delivery>,
}

/// Read and detect the shape; an unreadable file is a failed job with a clear error.
pub fn read_event(bytes: &[u8]) -> Result<EventFile, JobError> {
    let (shape, deliveries) = parse::parse_json(bytes).and_then(parse::detect)?;
    Ok(EventFile { shape, deliveries })
}

/// True when any job of the file generates (so the model must be loaded).
pub fn needs_model(file: &EventFile) -> bool {
    file.deliveries
        .iter()
        .any(|d| d.body.get("prompt").is_some() || !d.body.is_object())
}

/// Run every job of the file in order; returns (delivery id, outcome) pairs.
pub async fn run(worker: &Worker, file: EventFile) -> Vec<(String, JobOutcome)> {
    let mut outcomes = Vec::with_capacity(file.deliveries.len());
    for d in file.deliveries {
        let id = d
            .delivery_id
            .unwrap_or_else(|| format!("local-{}", uuid::Uuid::new_v4()));
        let outcome = worker.handle(JobRequest::new(d.body, id.clone())).await;
        outcomes.push((id, outcome));
    }
    outcomes
}

/// The JSON printed for the outcomes: one outcome, or for an SQS batch the outcomes plus the
/// `batchItemFailures` Lambda would answer (retryable failures only).
pub fn render(shape: EventShape, outcomes: &[(String, JobOutcome)]) -> Value {
    let only: Vec<&JobOutcome> = outcomes.iter().map(|(_, o)| o).collect();
    match (shape, only.as_slice()) {
        (EventShape::SqsBatch, _) => {
            let failures: Vec<Value> = outcomes
                .iter()
                .filter(|(_, o)| o.error.as_ref().is_some_and(|e| e.retryable))
                .map(|(message_id, _)| serde_json::json!({"itemIdentifier": message_id}))
                .collect();
            serde_json::json!({"outcomes": only, "batchItemFailures": failures})
        }
        (_, [one]) => serde_json::to_value(one).unwrap_or(Value::Null),
        _ => serde_json::to_value(&only).unwrap_or(Value::Null),
    }
}
