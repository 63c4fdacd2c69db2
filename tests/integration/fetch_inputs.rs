//! Oversized, corrupt and unreachable inputs through `Fetcher`, over a real HTTP server on
//! loopback and inline base64: each gets its clear code and field, and the same fetcher keeps
//! working for the next call.

use crate::support;

use base64::Engine;
use merchgen::error::{ErrorCode, JobError};
use merchgen::fetch::{FetchConfig, Fetcher};
use merchgen::job::ImageSource;
use std::time::Duration;
use support::http::{Reply, TestServer};
use support::images::{png, png_header_only};

const MAX_BYTES: usize = 64 * 1024;

fn fetcher(allow_paths: bool) -> Fetcher {
    Fetcher::new(FetchConfig {
        timeout_secs: 1,
        max_bytes: MAX_BYTES,
        max_pixels: 4_000_000,
        allow_cidrs: vec!["127.0.0.0/8".parse().unwrap()],
        allow_paths,
        ..FetchConfig::default()
    })
    .unwrap()
}

fn b64(bytes: &[u8]) -> ImageSource {
    ImageSource::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
}

async fn image_err(f: &Fetcher, source: ImageSource) -> JobError {
    match f.fetch_image(&source, "image").await {
        Ok(img) => panic!("{source:?} decoded to {:?}", img.dimensions()),
        Err(e) => e,
    }
}

#[tokio::test]
async fn corrupt_and_oversized_url_inputs_get_clear_errors_and_fetcher_recovers() {
    let full = png(64, 64);
    let cases: Vec<(Reply, ErrorCode, &str)> = vec![
        (
            Reply::ok(full[..full.len() / 2].to_vec()),
            ErrorCode::InvalidInput,
            "could not be decoded as PNG",
        ),
        (Reply::ok(Vec::new()), ErrorCode::InvalidInput, "is empty"),
        (
            Reply::ok(png_header_only(20_000, 20_000)),
            ErrorCode::InputTooLarge,
            "is 20000x20000 pixels",
        ),
        (
            Reply::ok(b"<html>hello</html>".to_vec()),
            ErrorCode::InvalidInput,
            "is not an image",
        ),
        (
            Reply::ok(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;".to_vec()),
            ErrorCode::InvalidInput,
            "is a GIF image",
        ),
        (
            Reply::ok(vec![0u8; MAX_BYTES + 1]),
            ErrorCode::InputTooLarge,
            "65536-byte limit",
        ),
        (
            Reply {
                omit_length: true,
                ..Reply::ok(vec![0u8; 4 * MAX_BYTES])
            },
            ErrorCode::InputTooLarge,
            "larger than the 65536-byte limit",
        ),
    ];
    let f = fetcher(false);
    for (i, (reply, code, text)) in cases.into_iter().enumerate() {
        let server = TestServer::script(vec![reply]).await;
        let e = image_err(&f, ImageSource::Url(server.url("/in"))).await;
        assert_eq!(e.code, code, "case {i}: {e:?}");
        assert_eq!(e.field.as_deref(), Some("image.url"), "case {i}");
        assert!(
            e.message.starts_with("image.url: "),
            "case {i}: {}",
            e.message
        );
        assert!(e.message.contains(text), "case {i}: {}", e.message);
        assert!(!e.retryable, "case {i}");
        // The next call on the same fetcher still works.
        let good = TestServer::script(vec![Reply::ok(png(4, 4))]).await;
        let img = f
            .fetch_image(&ImageSource::Url(good.url("/ok")), "image")
            .await
            .unwrap();
        assert_eq!(img.dimensions(), (4, 4), "after case {i}");
    }
}

#[tokio::test]
async fn corrupt_and_oversized_base64_inputs_get_clear_errors() {
    let f = fetcher(false);
    let full = png(64, 64);
    let e = image_err(&f, b64(&full[..full.len() - 40])).await;
    assert_eq!(
        (e.code, e.field.as_deref()),
        (ErrorCode::InvalidInput, Some("image.base64"))
    );
    let e = image_err(&f, b64(&vec![1u8; MAX_BYTES + 10])).await;
    assert_eq!(e.code, ErrorCode::InputTooLarge);
    assert!(e.message.contains("65536-byte limit"), "{}", e.message);
    let e = image_err(&f, ImageSource::Base64("data:image/png;base64,@@@".into())).await;
    assert_eq!(e.code, ErrorCode::InvalidInput);
    assert!(e.message.contains("not valid base64"), "{}", e.message);
    let e = image_err(&f, b64(&png_header_only(20_000, 20_000))).await;
    assert_eq!(e.code, ErrorCode::InputTooLarge);
    let data_uri = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png(2, 5))
    );
    let img = f
        .fetch_image(&ImageSource::Base64(data_uri), "image")
        .await
        .unwrap();
    assert_eq!(img.dimensions(), (2, 5));
}

#[tokio::test]
async fn http_failures_map_to_input_fetch_failed_with_retry_hint() {
    let f = fetcher(false);
    let cases = [
        (Reply::status(404), false, "HTTP 404"),
        (Reply::status(503), true, "HTTP 503"),
    ];
    for (reply, retryable, text) in cases {
        let server = TestServer::script(vec![reply]).await;
        let e = image_err(&f, ImageSource::Url(server.url("/x"))).await;
        assert_eq!(e.code, ErrorCode::InputFetchFailed);
        assert_eq!(e.retryable, retryable, "{text}");
        assert!(e.message.contains(text), "{}", e.message);
    }
    let slow = TestServer::script(vec![Reply {
        delay: Some(Duration::from_secs(3)),
        ..Reply::ok(png(1, 1))
    }])
    .await;
    let e = image_err(&f, ImageSource::Url(slow.url("/slow"))).await;
    assert_eq!(e.code, ErrorCode::InputFetchFailed);
    assert!(e.retryable);
    assert!(e.message.contains("timed out after 1 s"), "{}", e.message);
    // A port with nobody listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = image_err(&f, ImageSource::Url(format!("http://127.0.0.1:{port}/"))).await;
    assert_eq!((e.code, e.retryable), (ErrorCode::InputFetchFailed, true));
    assert!(e.message.contains("could not be reached"), "{}", e.message);
}

#[tokio::test]
async fn local_paths_only_when_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.png");
    std::fs::write(&path, png(6, 2)).unwrap();
    let source = ImageSource::Path(path.display().to_string());
    let e = image_err(&fetcher(false), source.clone()).await;
    assert_eq!(
        (e.code, e.field.as_deref()),
        (ErrorCode::InvalidInput, Some("image.path"))
    );
    let img = fetcher(true).fetch_image(&source, "image").await.unwrap();
    assert_eq!(img.dimensions(), (6, 2));
    let missing = ImageSource::Path(dir.path().join("nope.png").display().to_string());
    let e = image_err(&fetcher(true), missing).await;
    assert_eq!(e.code, ErrorCode::InputFetchFailed);
    assert!(e.message.contains("was not found"), "{}", e.message);
}
