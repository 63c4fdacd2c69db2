//! Bytes to `JobSpec`, with errors that name the field, and detection of the event shapes a
//! local file may hold (bare job, RunPod job, Lambda direct event, SQS event batch).

use super::spec::JobSpec;
use super::strict_json::{self, StrictJson};
use crate::error::{ErrorCode, JobError};
use serde_json::Value;

/// Largest job body accepted (base64 designs make bodies large; images are checked again later).
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// One job found in an event, with the delivery's id when the shape carries one.
#[derive(Debug, Clone, PartialEq)]
pub struct EventJob {
    pub(crate) delivery_id: Option<String>,
    /// The job body (still unparsed, so one bad record fails alone).
    pub body: Value,
}

/// The shape of an event file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventShape {
    /// The job itself (also what a Lambda direct invocation carries).
    BareJob,
    /// RunPod's `{"id", "input"}` (id optional locally).
    RunPod,
    /// An SQS event batch `{"Records": [...]}`.
    SqsBatch,
}

/// Parse JSON bytes into a value, with a clear error for size, UTF-8 and syntax problems.
pub fn parse_json(bytes: &[u8]) -> Result<Value, JobError> {
    if bytes.len() > MAX_BODY_BYTES {
        return Err(JobError::new(
            ErrorCode::InputTooLarge,
            format!(
                "the job body is {} bytes; at most {MAX_BODY_BYTES} are accepted",
                bytes.len()
            ),
        )
        .with_field("body"));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        JobError::invalid(
            "body",
            format!("is not valid UTF-8 (at byte {})", e.valid_up_to()),
        )
    })?;
    serde_json::from_str::<StrictJson>(text)
        .map(|strict| strict.0)
        .map_err(|e| JobError::invalid("body", format!("is not valid JSON: {e}")))
}

/// Decide which shape an event has and list the jobs in it.
pub fn detect(event: Value) -> Result<(EventShape, Vec<EventJob>), JobError> {
    let Value::Object(map) = &event else {
        return Err(JobError::invalid("body", "must be a JSON object"));
    };
    if let Some(records) = map.get("Records") {
        let Value::Array(records) = records else {
            return Err(JobError::invalid("Records", "must be an array"));
        };
        let deliveries = records
            .iter()
            .enumerate()
            .map(|(i, r)| sqs_record(i, r))
            .collect::<Result<_, _>>()?;
        return Ok((EventShape::SqsBatch, deliveries));
    }
    if let Some(input) = map.get("input") {
        if !input.is_object() {
            return Err(JobError::invalid(
                "input",
                "must be a JSON object (the job)",
            ));
        }
        let delivery_id = map.get("id").and_then(Value::as_str).map(str::to_owned);
        let mut body = input.clone();
        strict_json::mark_member(&event, "input", &mut body);
        return Ok((EventShape::RunPod, vec![EventJob { delivery_id, body }]));
    }
    Ok((
        EventShape::BareJob,
        vec![EventJob {
            delivery_id: None,
            body: event,
        }],
    ))
}

fn sqs_record(i: usize, r: &Value) -> Result<EventJob, JobError> {
    let field = |name: &str| format!("Records[{i}].{name}");
    let body = r
        .get("body")
        .and_then(Value::as_str)
        .ok_or_else(|| JobError::invalid(field("body"), "must be a string"))?;
    let delivery_id = r
        .get("messageId")
        .and_then(Value::as_str)
        .map(str::to_owned);
    // A body that is not JSON is kept as a string so that the record fails alone, later.
    let body = serde_json::from_str::<StrictJson>(body)
        .map_or_else(|_| Value::String(body.to_owned()), |strict| strict.0);
    Ok(EventJob { delivery_id, body })
}

/// Deserialize a job body; the error names the field at fault (`mockups.products[0]`).
pub fn job_from_value(mut body: Value) -> Result<JobSpec, JobError> {
    if !body.is_object() {
        return Err(JobError::invalid("body", "the job must be a JSON object"));
    }
    if let Some(key) = strict_json::take_mark(&mut body) {
        return Err(JobError::invalid(
            key,
            "appears more than once in its object; send each key once (which value counts would depend on who reads the body)",
        ));
    }
    serde_path_to_error::deserialize::<_, JobSpec>(body).map_err(|e| {
        let inner = e.inner().to_string();
        let path = e.path().to_string();
        // The path already ends at an unknown key; at the root it is ".".
        let field = if path == "." {
            unknown_field_name(&inner).unwrap_or_else(|| "body".to_owned())
        } else {
            path
        };
        JobError::invalid(field, inner)
    })
}

/// Deserialize a job from raw bytes (a bare job, not an event).
pub fn job_from_slice(bytes: &[u8]) -> Result<JobSpec, JobError> {
    job_from_value(parse_json(bytes)?)
}

fn unknown_field_name(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest.split('`').next()?.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn detect_runpod_sqs_and_bare_shapes() {
        let (shape, d) = detect(json!({"id": "rp-1", "input": {"prompt": "x"}})).unwrap();
        assert_eq!(shape, EventShape::RunPod);
        assert_eq!(d[0].delivery_id.as_deref(), Some("rp-1"));
        let sqs = json!({"Records": [{"messageId": "m1", "body": "{\"prompt\":\"x\"}"},
                                      {"messageId": "m2", "body": "not json"}]});
        let (shape, d) = detect(sqs).unwrap();
        assert_eq!(shape, EventShape::SqsBatch);
        assert_eq!(d.len(), 2);
        assert_eq!(d[1].body, Value::String("not json".into()));
        let (shape, _) = detect(json!({"prompt": "x"})).unwrap();
        assert_eq!(shape, EventShape::BareJob);
    }

    #[test]
    fn job_from_value_nested_unknown_field_names_path() {
        let err = job_from_value(json!({"prompt": "x", "mockups": {"products": [], "colour": []}}))
            .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("mockups.colour"));
    }

    #[test]
    fn job_from_value_wrong_type_names_path() {
        let err = job_from_value(json!({"prompt": "x", "mockups": {"products": [1]}})).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("mockups.products[0]"));
    }
}
