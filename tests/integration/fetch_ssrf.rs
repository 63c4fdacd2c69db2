//! SSRF guard of input fetching, end to end through `Fetcher`: literal addresses in every
//! spelling, names resolving to loopback, redirects from an allowed server to refused targets,
//! and the allow-list that lets the tests reach loopback at all. No request ever leaves loopback:
//! refused literal addresses are refused before any connection.

use crate::support;

use merchgen::error::ErrorCode;
use merchgen::fetch::{FetchConfig, Fetcher};
use merchgen::job::ImageSource;
use support::http::{Reply, TestServer};
use support::images::png;

fn fetcher(allow: &[&str]) -> Fetcher {
    Fetcher::new(FetchConfig {
        timeout_secs: 5,
        max_redirects: 3,
        allow_cidrs: allow.iter().map(|c| c.parse().unwrap()).collect(),
        ..FetchConfig::default()
    })
    .unwrap()
}

async fn fetch_err(f: &Fetcher, url: &str) -> merchgen::error::JobError {
    match f
        .fetch_bytes(&ImageSource::Url(url.to_owned()), "image")
        .await
    {
        Ok(bytes) => panic!(
            "{url} was fetched ({} bytes) but must be refused",
            bytes.len()
        ),
        Err(e) => e,
    }
}

#[tokio::test]
async fn literal_private_addresses_are_refused_naming_the_field() {
    let f = fetcher(&[]);
    let table = [
        ("http://127.0.0.1/x.png", "loopback"),
        ("http://127.8.9.10:8080/", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://[::ffff:7f00:1]/", "loopback"),
        ("http://[64:ff9b::7f00:1]/", "loopback"),
        ("http://10.0.0.1/", "private"),
        ("http://172.16.5.4/", "private"),
        ("http://192.168.1.1/", "private"),
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("http://[fd00:ec2::254]/", "cloud metadata"),
        ("http://[::ffff:169.254.169.254]/", "cloud metadata"),
        ("http://169.254.10.20/", "link-local"),
        ("http://[fd00::1]/", "unique-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://[::]/", "unspecified"),
        ("http://2130706433/", "loopback"),
        ("http://0177.0.0.1/", "loopback"),
        ("http://0x7f.1/", "loopback"),
        ("http://127.1/", "loopback"),
        ("http://100.64.0.1/", "carrier-grade NAT"),
        ("http://224.0.0.1/", "multicast"),
        ("http://255.255.255.255/", "broadcast"),
        ("http://192.0.2.10/", "documentation"),
        ("http://[2001:db8::1]/", "documentation"),
    ];
    for (url, class) in table {
        let e = fetch_err(&f, url).await;
        assert_eq!(e.code, ErrorCode::InvalidInput, "{url}: {e:?}");
        assert_eq!(e.field.as_deref(), Some("image.url"), "{url}");
        assert!(
            e.message.starts_with("image.url: refers to"),
            "{url}: {}",
            e.message
        );
        assert!(e.message.contains(class), "{url}: {}", e.message);
        assert!(!e.retryable, "{url}");
    }
}

#[tokio::test]
async fn names_resolving_to_loopback_are_refused_after_resolution() {
    let f = fetcher(&[]);
    for url in ["http://localhost/x.png", "http://LocalHost:9/"] {
        let e = fetch_err(&f, url).await;
        assert_eq!(e.code, ErrorCode::InputFetchFailed, "{url}: {e:?}");
        assert_eq!(e.field.as_deref(), Some("image.url"));
        assert!(
            e.message.contains("resolves to a loopback address"),
            "{}",
            e.message
        );
        assert!(!e.retryable);
    }
}

#[tokio::test]
async fn allow_list_opens_loopback_for_a_test_server() {
    let server = TestServer::script(vec![Reply::ok(png(3, 2))]).await;
    let img = fetcher(&["127.0.0.0/8"])
        .fetch_image(&ImageSource::Url(server.url("/a.png")), "image")
        .await
        .unwrap();
    assert_eq!(img.dimensions(), (3, 2));
    // The same server stays out of reach without the allow-list.
    let e = fetch_err(&fetcher(&[]), &server.url("/a.png")).await;
    assert_eq!(e.code, ErrorCode::InvalidInput);
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn redirects_to_refused_targets_are_not_followed() {
    let f = fetcher(&["127.0.0.0/8"]);
    for target in [
        "http://10.0.0.1/x.png",
        "http://[::ffff:169.254.169.254]/",
        "http://0xa000001/",
        "http://[fe80::1]/",
    ] {
        let server = TestServer::script(vec![Reply::redirect(302, target)]).await;
        let e = fetch_err(&f, &server.url("/start")).await;
        assert_eq!(e.code, ErrorCode::InputFetchFailed, "{target}: {e:?}");
        assert_eq!(e.field.as_deref(), Some("image.url"));
        assert!(
            e.message.contains("redirects to"),
            "{target}: {}",
            e.message
        );
        assert!(!e.retryable);
        assert_eq!(server.requests().len(), 1, "{target}");
    }
    // reqwest never follows a redirect to another scheme; the 3xx is the answer.
    let server = TestServer::script(vec![Reply::redirect(302, "file:///etc/passwd")]).await;
    let e = fetch_err(&f, &server.url("/start")).await;
    assert_eq!(e.code, ErrorCode::InputFetchFailed);
    assert!(e.message.contains("HTTP 302"), "{}", e.message);
}

#[tokio::test]
async fn redirect_to_a_name_resolving_to_refused_address_is_refused() {
    // Only 127.0.0.2 is opened; `localhost` resolves to 127.0.0.1 and ::1, both refused.
    let f = fetcher(&["127.0.0.2/32"]);
    let server = TestServer::start("127.0.0.2:0", |_, _| {
        Reply::redirect(302, "http://localhost:1/")
    })
    .await;
    let e = fetch_err(&f, &server.url("/start")).await;
    assert_eq!(e.code, ErrorCode::InputFetchFailed, "{e:?}");
    assert!(
        e.message.contains("resolves to a loopback address"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn redirects_are_followed_up_to_the_limit() {
    let f = fetcher(&["127.0.0.0/8"]);
    let ok = TestServer::script(vec![Reply::ok(png(1, 1))]).await;
    let hop = TestServer::script(vec![Reply::redirect(301, &ok.url("/final.png"))]).await;
    let bytes = f
        .fetch_bytes(&ImageSource::Url(hop.url("/")), "design")
        .await
        .unwrap();
    assert_eq!(bytes, png(1, 1));

    let looping = TestServer::start("127.0.0.1:0", |_, _| Reply::redirect(302, "/again")).await;
    let e = f
        .fetch_bytes(&ImageSource::Url(looping.url("/")), "design")
        .await
        .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("design.url"));
    assert!(e.message.contains("more than 3 redirects"), "{}", e.message);
    assert_eq!(looping.requests().len(), 4);
}
