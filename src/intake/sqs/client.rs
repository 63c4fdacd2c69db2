//! The SQS client of the SQS door: built once, with the same TLS stack as the S3 client (rustls
//! with *ring*, no aws-lc), timeouts that outlast a 20-second long poll, and the region taken
//! from the queue URL when the environment names none.

use aws_config::{BehaviorVersion, Region};
use aws_sdk_sqs::Client;
use aws_smithy_http_client::tls;
use std::time::Duration;

/// Region used when neither the environment nor the queue URL names one (SQS-compatible
/// servers ignore it).
const FALLBACK_REGION: &str = "us-east-1";

/// Build the client. `endpoint` overrides the SQS endpoint (SQS-compatible servers, tests);
/// `AWS_ENDPOINT_URL` is honoured by the SDK itself. `wait_secs` is the long-poll wait.
pub async fn build(endpoint: Option<&str>, queue_url: &str, wait_secs: u32) -> Client {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let base = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .load()
        .await;
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        // A long poll holds the request open for `wait_secs`: the attempt must outlast it.
        .operation_attempt_timeout(Duration::from_secs(u64::from(wait_secs) + 15))
        .build();
    let mut b = aws_sdk_sqs::config::Builder::from(&base).timeout_config(timeouts);
    if let Some(endpoint) = endpoint {
        b = b.endpoint_url(endpoint);
    }
    if base.region().is_none() {
        let region = region_of_queue_url(queue_url).unwrap_or_else(|| FALLBACK_REGION.to_owned());
        b = b.region(Region::new(region));
    }
    Client::from_conf(b.build())
}

/// The region in an AWS queue URL (`https://sqs.eu-west-1.amazonaws.com/123/jobs`, or the
/// legacy `https://eu-west-1.queue.amazonaws.com/...`).
pub(crate) fn region_of_queue_url(queue_url: &str) -> Option<String> {
    let host = url::Url::parse(queue_url).ok()?.host_str()?.to_owned();
    let mut parts = host.split('.');
    let region = match (parts.next()?, parts.next()?) {
        ("sqs", region) => region,
        (region, "queue") => region,
        _ => return None,
    };
    let valid = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    (valid && host.contains(".amazonaws.com")).then(|| region.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_of_queue_url_reads_both_aws_forms_and_ignores_others() {
        let r = |u: &str| region_of_queue_url(u);
        assert_eq!(
            r("https://sqs.eu-west-1.amazonaws.com/123456789012/jobs").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            r("https://us-east-2.queue.amazonaws.com/123456789012/jobs").as_deref(),
            Some("us-east-2")
        );
        assert_eq!(
            r("https://sqs.cn-north-1.amazonaws.com.cn/1/q").as_deref(),
            Some("cn-north-1")
        );
        assert_eq!(r("http://127.0.0.1:5000/123456789012/jobs"), None);
        assert_eq!(r("not a url"), None);
    }
}
