//! `InlineSink`: returns each file as base64 inside the outcome. A running total over the job
//! refuses past a configured budget, because RunPod rejects results over 10-20 MB and a huge
//! result would fail later, less clearly, after all the GPU work was paid for.

use super::keys;
use super::sink::{OutputError, OutputSink, StoredObject};
use base64::Engine;
use std::sync::Mutex;

/// Base64 outputs with a per-job byte budget (counted in base64 bytes, as they travel).
#[derive(Debug)]
pub(crate) struct InlineSink {
    limit: usize,
    used: Mutex<usize>,
}

impl InlineSink {
    /// A sink that accepts at most `limit` base64 bytes in all.
    pub(crate) fn new(limit: usize) -> Self {
        InlineSink {
            limit,
            used: Mutex::new(0),
        }
    }

    /// Base64 bytes handed out so far.
    #[cfg(test)]
    pub(crate) fn used(&self) -> usize {
        *self.used.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait::async_trait]
impl OutputSink for InlineSink {
    async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        _content_type: &str,
    ) -> Result<StoredObject, OutputError> {
        keys::check(key)?;
        let encoded_len = bytes.len().div_ceil(3) * 4;
        {
            let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
            let total = used.saturating_add(encoded_len);
            if total > self.limit {
                return Err(OutputError::InlineLimit {
                    total,
                    limit: self.limit,
                });
            }
            *used = total;
        }
        Ok(StoredObject {
            key: key.to_owned(),
            url: None,
            base64: Some(base64::engine::general_purpose::STANDARD.encode(&bytes)),
        })
    }

    /// Inline outputs are not kept, so there is never anything to read back.
    async fn get(&self, _key: &str) -> Result<Option<Vec<u8>>, OutputError> {
        Ok(None)
    }

    fn describe(&self) -> String {
        format!("inline (at most {} bytes)", self.limit)
    }

    fn persistent(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_returns_base64_and_counts_running_total() {
        let sink = InlineSink::new(16);
        let a = sink
            .put("j/images/0.png", b"abc".to_vec(), "image/png")
            .await
            .unwrap();
        assert_eq!(a.base64.as_deref(), Some("YWJj"));
        assert_eq!(a.url, None);
        sink.put("j/images/1.png", vec![0; 9], "image/png")
            .await
            .unwrap();
        assert_eq!(sink.used(), 16);
        let err = sink
            .put("j/images/2.png", vec![0], "image/png")
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            OutputError::InlineLimit {
                total: 20,
                limit: 16
            }
        ));
        // A refused put does not count.
        assert_eq!(sink.used(), 16);
    }
}
