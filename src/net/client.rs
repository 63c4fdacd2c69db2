//! `GuardedClient`: the one HTTP client for addresses a job names. Every name resolves through
//! [`GuardedResolver`](super::resolve::GuardedResolver), literal addresses and redirect targets
//! are checked against the same [`AddressPolicy`], and proxy variables are ignored (a proxy would
//! connect on our behalf, past the resolver's check). Input fetching and webhook delivery each
//! build one per process; the `reqwest::Client` inside is a handle to one connection pool.

use super::guard::{self, AddressPolicy, UrlRefusal};
use super::resolve::{GuardedResolver, RedirectRefused};
use reqwest::redirect::{Attempt, Policy};
use std::sync::Arc;
use std::time::Duration;

/// The `User-Agent` of every guarded request.
pub(crate) const USER_AGENT: &str = concat!("merchgen/", env!("CARGO_PKG_VERSION"));

/// How a guarded client treats redirects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Redirects {
    /// Never followed (webhooks: a 3xx is the receiver's answer).
    None,
    /// Followed up to this many, each target checked like the original URL.
    Follow(usize),
}

/// An HTTP client that reaches only the addresses its policy allows.
#[derive(Debug, Clone)]
pub(crate) struct GuardedClient {
    policy: Arc<AddressPolicy>,
    http: reqwest::Client,
}

impl GuardedClient {
    /// A client opening the `allow` ranges (`MERCHGEN_FETCH_ALLOW`), with a whole-request
    /// `timeout` (connecting gets at most 10 s of it). Fails only if the TLS stack cannot start.
    pub(crate) fn new(
        allow: Vec<ipnet::IpNet>,
        timeout: Duration,
        redirects: Redirects,
    ) -> Result<Self, reqwest::Error> {
        let policy = Arc::new(AddressPolicy::new(allow));
        let redirect = match redirects {
            Redirects::None => Policy::none(),
            Redirects::Follow(max) => redirect_policy(Arc::clone(&policy), max),
        };
        let http = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver::new(Arc::clone(&policy))))
            .no_proxy()
            .redirect(redirect)
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(USER_AGENT)
            .build()?;
        Ok(GuardedClient { policy, http })
    }

    /// Check a URL's scheme and literal address before any request (names are checked when
    /// they resolve).
    pub(crate) fn check(&self, url: &reqwest::Url) -> Result<(), UrlRefusal> {
        guard::check_url(url, &self.policy)
    }

    /// The client itself, for building requests.
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }
}

/// Redirects followed up to `max`, each target checked like the original URL (literal
/// addresses here; names by the resolver when connecting).
fn redirect_policy(policy: Arc<AddressPolicy>, max: usize) -> Policy {
    Policy::custom(move |attempt: Attempt| {
        // `previous` holds every URL requested so far, the original included.
        if attempt.previous().len() > max {
            return attempt.error(RedirectRefused(format!("more than {max} redirects")));
        }
        match guard::check_url(attempt.url(), &policy) {
            Ok(()) => attempt.follow(),
            Err(UrlRefusal::Address(b)) => {
                attempt.error(RedirectRefused(format!("redirects to {}", b.class)))
            }
            Err(other) => {
                attempt.error(RedirectRefused(format!("redirects to a URL that {other}")))
            }
        }
    })
}
