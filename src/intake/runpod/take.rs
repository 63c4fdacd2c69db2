//! What a job-take answer means: 204 and 400 are "no job" (400 is
//! expected with FlashBoot), 429 asks to back off, a JSON object is one job and a JSON array a
//! batch. Liberal where the SDK is strict: a job with an id but no usable `input` is kept (it
//! fails as `invalid_input` and is reported), so no job the platform handed over is dropped.

use super::client::Answer;
use crate::job::strict_json::{self, StrictJson};
use serde_json::Value;
use std::time::Duration;

/// One job as the platform hands it over.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TakenJob {
    /// RunPod's job id: the delivery id, and the `$ID` of job-done.
    pub id: String,
    /// The merchgen job (`Null` when the platform sent none).
    pub input: Value,
    /// The request's `s3Config`, when it had one.
    pub s3_config: Option<Value>,
    /// The request's `policy.executionTimeout` (milliseconds on the wire), when it had one.
    pub execution_timeout: Option<Duration>,
}

/// The meaning of one job-take answer.
#[derive(Debug, PartialEq)]
pub(crate) enum Take {
    Jobs(Vec<TakenJob>),
    /// Nothing to do now (also a long poll that ran out).
    NoJob,
    /// 429: wait before asking again.
    Throttled,
    /// An error status, a broken connection or an unreadable body.
    Failed(String),
}

/// Interpret a job-take answer.
pub(crate) fn interpret(answer: Answer) -> Take {
    match answer {
        Answer::Ok { json, body, .. } if !json || body.iter().all(u8::is_ascii_whitespace) => {
            Take::NoJob
        }
        Answer::Ok { body, .. } => match parse_strict(&body) {
            Ok(value) => jobs(value),
            Err(_) => Take::Failed(format!(
                "job-take answered {} bytes that are not JSON",
                body.len()
            )),
        },
        Answer::Status(204 | 400) | Answer::TimedOut => Take::NoJob,
        Answer::Status(429) => Take::Throttled,
        Answer::Status(status) => Take::Failed(format!("job-take answered HTTP {status}")),
        Answer::Failed(why) => Take::Failed(why),
    }
}

/// The answer as JSON, each job's repeated keys marked (see `job::strict_json`).
fn parse_strict(body: &[u8]) -> serde_json::Result<Value> {
    let list = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    if list {
        let items: Vec<StrictJson> = serde_json::from_slice(body)?;
        Ok(Value::Array(items.into_iter().map(|i| i.0).collect()))
    } else {
        serde_json::from_slice::<StrictJson>(body).map(|strict| strict.0)
    }
}

fn jobs(value: Value) -> Take {
    match value {
        Value::Array(items) => {
            let total = items.len();
            let found: Vec<TakenJob> = items.into_iter().filter_map(job).collect();
            if found.len() < total {
                tracing::warn!(
                    dropped = total - found.len(),
                    "job-take batch held entries without an id"
                );
            }
            if found.is_empty() {
                Take::NoJob
            } else {
                Take::Jobs(found)
            }
        }
        Value::Object(_) => match job(value) {
            Some(j) => Take::Jobs(vec![j]),
            None => Take::Failed("job-take answered an object without a job id".into()),
        },
        Value::Null => Take::NoJob,
        _ => Take::Failed("job-take answered JSON that is neither a job nor a list of jobs".into()),
    }
}

fn job(mut value: Value) -> Option<TakenJob> {
    let id = match value.get("id")? {
        Value::String(s) if !s.is_empty() => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let mut input = value.get("input").cloned().unwrap_or(Value::Null);
    strict_json::mark_member(&value, "input", &mut input);
    let obj = value.as_object_mut()?;
    let s3_config = obj.remove("s3Config").filter(|v| !v.is_null());
    let execution_timeout = obj
        .get("policy")
        .and_then(|p| p.get("executionTimeout"))
        .and_then(Value::as_u64)
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis);
    Some(TakenJob {
        id,
        input,
        s3_config,
        execution_timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(body: &str) -> Answer {
        Answer::Ok {
            status: 200,
            json: true,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn statuses_map_to_sdk_behaviour() {
        assert_eq!(interpret(Answer::Status(204)), Take::NoJob);
        assert_eq!(interpret(Answer::Status(400)), Take::NoJob);
        assert_eq!(interpret(Answer::Status(429)), Take::Throttled);
        assert!(matches!(interpret(Answer::Status(500)), Take::Failed(_)));
        assert_eq!(interpret(Answer::TimedOut), Take::NoJob);
        assert_eq!(
            interpret(Answer::Ok {
                status: 200,
                json: false,
                body: b"{}".to_vec()
            }),
            Take::NoJob
        );
        assert_eq!(interpret(ok("")), Take::NoJob);
        assert!(matches!(interpret(ok("{not json")), Take::Failed(_)));
    }

    #[test]
    fn single_and_batch_jobs() {
        let one = interpret(ok(
            r#"{"id": "a", "input": {"prompt": "x"}, "s3Config": {"bucketName": "b"}}"#,
        ));
        let Take::Jobs(jobs) = one else {
            panic!("one job")
        };
        assert_eq!(jobs[0].id, "a");
        assert_eq!(jobs[0].input, json!({"prompt": "x"}));
        assert_eq!(jobs[0].s3_config, Some(json!({"bucketName": "b"})));
        assert_eq!(jobs[0].execution_timeout, None);
        let Take::Jobs(jobs) = interpret(ok(
            r#"{"id": "p", "input": {}, "policy": {"executionTimeout": 5000, "ttl": 86400000}}"#,
        )) else {
            panic!("a job with a policy")
        };
        assert_eq!(jobs[0].execution_timeout, Some(Duration::from_secs(5)));

        let Take::Jobs(jobs) = interpret(ok(
            r#"[{"id": "a", "input": {}}, {"input": {}}, {"id": "c"}]"#,
        )) else {
            panic!("batch")
        };
        assert_eq!(
            jobs.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(),
            ["a", "c"]
        );
        assert_eq!(
            jobs[1].input,
            Value::Null,
            "kept, to be reported as invalid"
        );
        assert_eq!(interpret(ok("[]")), Take::NoJob);
        assert!(matches!(interpret(ok(r#"{"input": {}}"#)), Take::Failed(_)));
    }
}
