//! An in-memory `JobSource` for the runtime's tests and `merchgen bench pipeline`: a queue of
//! bodies, and a record of how each delivery was settled. No door uses it.

use super::source::{BodyError, Delivery, JobSource, Settled, Settlement, SourceError};
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[derive(Default)]
pub struct MemorySource {
    queue: Mutex<VecDeque<(String, Result<Value, BodyError>)>>,
    settled: Mutex<Vec<(String, Settlement)>>,
}

/// The lock's data even when a panicking holder poisoned it (a test's failure is reported by
/// its own panic; the queue is still consistent).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl MemorySource {
    pub fn with(items: Vec<(&str, Result<Value, BodyError>)>) -> Self {
        let source = MemorySource::default();
        for (id, body) in items {
            lock(&source.queue).push_back((id.to_owned(), body));
        }
        source
    }

    /// Settlements so far, in order.
    pub fn settled(&self) -> Vec<(String, Settlement)> {
        lock(&self.settled).clone()
    }

    /// Messages never handed out.
    pub fn left(&self) -> usize {
        lock(&self.queue).len()
    }
}

#[async_trait::async_trait]
impl JobSource for MemorySource {
    type Ticket = ();

    async fn next(&self, stop: &CancellationToken) -> Result<Option<Delivery<()>>, SourceError> {
        let item = lock(&self.queue).pop_front();
        let Some((id, body)) = item else {
            // An empty long poll, cut short by the stop.
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(20)) => {}
                () = stop.cancelled() => {}
            }
            return Ok(None);
        };
        Ok(Some(Delivery {
            id,
            attempt: 1,
            received: Instant::now(),
            body,
            ticket: (),
        }))
    }

    async fn settle(&self, id: &str, _: (), settled: Settled) -> Result<(), SourceError> {
        lock(&self.settled).push((id.to_owned(), settled.settlement));
        Ok(())
    }
}
