//! Name resolution under the SSRF guard: a DNS resolver that drops refused addresses (so a name
//! cannot be re-bound between check and connect: the checked addresses are the ones connected
//! to), and helpers that find a guard's refusal inside a `reqwest` error.

use super::guard::{AddressPolicy, Blocked};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::Arc;

/// A host name whose every address is refused by the policy.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{host} resolves to {blocked}")]
pub(crate) struct ResolvedToBlocked {
    pub host: String,
    pub(crate) blocked: Blocked,
}

/// A URL refused before or during a redirect (literal address, scheme, redirect limit).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub(crate) struct RedirectRefused(pub String);

/// Resolves with the system resolver, then keeps only the addresses the policy allows.
#[derive(Debug, Clone)]
pub(crate) struct GuardedResolver {
    policy: Arc<AddressPolicy>,
}

impl GuardedResolver {
    /// A resolver enforcing `policy`.
    pub(crate) fn new(policy: Arc<AddressPolicy>) -> Self {
        GuardedResolver { policy }
    }
}

/// The addresses of `host` that `policy` allows; an error when it has none (naming the first
/// refused address, if any).
pub(crate) async fn allowed_addresses(
    policy: &AddressPolicy,
    host: &str,
) -> Result<Vec<SocketAddr>, Box<dyn StdError + Send + Sync>> {
    let found: Vec<SocketAddr> = tokio::net::lookup_host((host, 0)).await?.collect();
    let (allowed, refused): (Vec<_>, Vec<_>) = found
        .into_iter()
        .map(|addr| (addr, policy.check(addr.ip())))
        .partition(|(_, verdict)| verdict.is_ok());
    if allowed.is_empty() {
        if let Some((_, Err(blocked))) = refused.into_iter().next() {
            tracing::warn!(host, %blocked, "refused a host resolving to a blocked address");
            let host = host.to_owned();
            return Err(Box::new(ResolvedToBlocked { host, blocked }));
        }
        return Err(format!("{host} has no addresses").into());
    }
    Ok(allowed.into_iter().map(|(addr, _)| addr).collect())
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.policy);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let allowed = allowed_addresses(&policy, &host).await?;
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// The same guard for the AWS SDK's HTTP client (S3 endpoints a job named).
impl aws_smithy_runtime_api::client::dns::ResolveDns for GuardedResolver {
    fn resolve_dns<'a>(
        &'a self,
        name: &'a str,
    ) -> aws_smithy_runtime_api::client::dns::DnsFuture<'a> {
        use aws_smithy_runtime_api::client::dns::{DnsFuture, ResolveDnsError};
        DnsFuture::new(async move {
            allowed_addresses(&self.policy, name)
                .await
                .map(|addrs| addrs.into_iter().map(|a| a.ip()).collect())
                .map_err(ResolveDnsError::new)
        })
    }
}

/// The first error of type `T` in `err`'s source chain.
pub(crate) fn find_in_chain<'a, T: StdError + 'static>(
    err: &'a (dyn StdError + 'static),
) -> Option<&'a T> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        cur = e.source();
    }
    None
}

/// Why a request was refused by the guard, if it was: a name resolving only to blocked
/// addresses, or a redirect to a refused URL.
pub(crate) fn refusal(err: &reqwest::Error) -> Option<String> {
    if let Some(r) = find_in_chain::<ResolvedToBlocked>(err) {
        return Some(format!("the host resolves to {}", r.blocked.class));
    }
    find_in_chain::<RedirectRefused>(err).map(|r| r.0.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn resolver_drops_blocked_addresses() {
        let resolver = GuardedResolver::new(Arc::new(AddressPolicy::default()));
        let name: Name = "localhost".parse().unwrap();
        let err = match resolver.resolve(name).await {
            Ok(_) => panic!("localhost must be refused"),
            Err(e) => e,
        };
        let blocked = err
            .downcast_ref::<ResolvedToBlocked>()
            .expect("a guard refusal");
        assert_eq!(blocked.host, "localhost");
    }

    #[tokio::test]
    async fn resolver_allows_listed_ranges() {
        let policy = AddressPolicy::new(vec![
            "127.0.0.0/8".parse().unwrap(),
            "::1/128".parse().unwrap(),
        ]);
        let resolver = GuardedResolver::new(Arc::new(policy));
        let addrs: Vec<_> = match resolver.resolve("localhost".parse().unwrap()).await {
            Ok(a) => a.collect(),
            Err(e) => panic!("{e}"),
        };
        assert!(addrs.iter().all(|a| a.ip().is_loopback()) && !addrs.is_empty());
    }
}
