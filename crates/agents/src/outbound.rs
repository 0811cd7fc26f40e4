//! Outbound HTTP to tenant URLs (webhook tools, MCP servers): a client that refuses private,
//! loopback, link-local and other non-public addresses unless the operator allows them.
//!
//! The check sits in the DNS resolver, so the address connected to is the address checked (a
//! name that resolves to a public address first and a private one later gains nothing), and
//! every redirect is checked again. Hosts written as IP literals never reach a resolver, so
//! they are checked on the URL itself, also on every redirect.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Redirects followed at most.
const MAX_REDIRECTS: usize = 5;

/// Why an outbound URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefused {
    #[error("only http and https URLs can be called")]
    Scheme,
    #[error("the URL has no host")]
    NoHost,
    #[error("{0} is a private, loopback or link-local address; calls to it are not allowed on this server")]
    Private(String),
    #[error("a redirect to another origin was refused")]
    OtherOrigin,
}

/// Whether `ip` is an address on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let segments = v6.segments();
            // NAT64 (64:ff9b::/96) carries an IPv4 address in its last 32 bits.
            if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [.., hi, lo] = segments;
                let v4 = Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
                return is_public_v4(v4);
            }
            // Other forms that tunnel or translate to IPv4 reach whatever IPv4 they embed:
            // local-use NAT64 (64:ff9b:1::/48), SIIT (::ffff:0:0/96), 6to4 (2002::/16) and
            // Teredo (2001::/32). They are refused outright.
            let tunnels = segments[..3] == [0x64, 0xff9b, 1]
                || segments[..6] == [0, 0, 0, 0, 0xffff, 0]
                || segments[0] == 0x2002
                || (segments[0] == 0x2001 && segments[1] == 0);
            !(tunnels
                || v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (segments[0] & 0xfe00) == 0xfc00 // unique local
                || (segments[0] & 0xffc0) == 0xfe80 // link-local
                || (segments[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
                || segments[0] == 0x2001 && segments[1] == 0x0db8 // documentation
                || segments[..5] == [0, 0, 0, 0, 0]) // IPv4-compatible and other reserved
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

/// Checks a URL's scheme, and its host when it is an IP literal or `localhost`.
pub fn check_url(url: &reqwest::Url, allow_private: bool) -> Result<(), UrlRefused> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UrlRefused::Scheme);
    }
    let host = url.host().ok_or(UrlRefused::NoHost)?;
    if allow_private {
        return Ok(());
    }
    let ip = match host {
        url::Host::Ipv4(ip) => IpAddr::V4(ip),
        url::Host::Ipv6(ip) => IpAddr::V6(ip),
        url::Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if name == "localhost" || name.ends_with(".localhost") {
                return Err(UrlRefused::Private(name));
            }
            return Ok(());
        }
    };
    if is_public(ip) {
        Ok(())
    } else {
        Err(UrlRefused::Private(ip.to_string()))
    }
}

/// Resolves names and drops every address that is not public.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            // `localhost` and its subdomains are loopback whatever a resolver says (RFC 6761).
            let bare = host.trim_end_matches('.').to_ascii_lowercase();
            if bare == "localhost" || bare.ends_with(".localhost") {
                return Err(
                    Box::new(UrlRefused::Private(host)) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|addr| is_public(addr.ip()))
                .collect();
            if public.is_empty() {
                // Which address it resolved to stays unsaid: it would map internal DNS.
                return Err(
                    Box::new(UrlRefused::Private(host)) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            let addrs: Addrs = Box::new(public.into_iter());
            Ok(addrs)
        })
    }
}

/// A client builder for tenant URLs: the address checks, redirects re-checked, a connect
/// timeout. Callers add their own request timeout (streams need none).
pub fn builder(allow_private: bool) -> reqwest::ClientBuilder {
    // Redirects stay on the origin the tenant configured (its secret headers and our
    // signature go nowhere else, and never from https down to http), and are checked again.
    let redirects = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= MAX_REDIRECTS {
            return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
        }
        let same_origin = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if !same_origin {
            return attempt.error(UrlRefused::OtherOrigin);
        }
        match check_url(attempt.url(), allow_private) {
            Ok(()) => attempt.follow(),
            Err(refused) => attempt.error(refused),
        }
    });
    // No proxy from the environment: a proxy would resolve names where our check cannot see.
    let builder = reqwest::Client::builder()
        .user_agent(concat!("frontdesk/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(5))
        .no_proxy()
        .redirect(redirects);
    if allow_private {
        builder
    } else {
        builder.dns_resolver(Arc::new(PublicOnly))
    }
}

/// Whether a request failed because its URL (or a redirect's) was refused.
pub fn is_refused(error: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if current.downcast_ref::<UrlRefused>().is_some() {
            return true;
        }
        source = current.source();
    }
    false
}

/// Describes a failed request for a tool result: refusals said plainly, no internals.
pub fn describe(error: &reqwest::Error) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if let Some(refused) = current.downcast_ref::<UrlRefused>() {
            return refused.to_string();
        }
        source = current.source();
    }
    // Described by kind: reqwest's own text names the URL, whose query may hold secrets.
    if error.is_timeout() {
        "the request timed out".to_owned()
    } else if error.is_connect() {
        "could not connect".to_owned()
    } else if error.is_redirect() {
        "too many or bad redirects".to_owned()
    } else if error.is_body() || error.is_decode() {
        "the response could not be read".to_owned()
    } else {
        "the request failed".to_owned()
    }
}

/// Reads at most `limit` bytes of a response body; more is an error (not a silent cut).
pub async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, String> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(format!("the response is larger than {limit} bytes"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| describe(&e))? {
        if body.len() + chunk.len() > limit {
            return Err(format!("the response is larger than {limit} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::a9fe:a9fe",
            "::ffff:0:a9fe:a9fe",
            "2002:a9fe:a9fe::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "::127.0.0.1",
        ] {
            let parsed: IpAddr = ip.parse().unwrap_or_else(|e| unreachable!("{ip}: {e}"));
            assert!(!is_public(parsed), "{ip} must not count as public");
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            let parsed: IpAddr = ip.parse().unwrap_or_else(|e| unreachable!("{ip}: {e}"));
            assert!(is_public(parsed), "{ip} is public");
        }
    }

    #[test]
    fn urls_are_checked_by_scheme_and_literal_host() {
        let check = |url: &str, allow: bool| {
            check_url(
                &reqwest::Url::parse(url).unwrap_or_else(|e| unreachable!("{e}")),
                allow,
            )
        };
        assert!(check("https://example.com/hook", false).is_ok());
        assert!(matches!(
            check("http://127.0.0.1:8080/", false),
            Err(UrlRefused::Private(_))
        ));
        assert!(matches!(
            check("http://[::1]/", false),
            Err(UrlRefused::Private(_))
        ));
        assert!(matches!(
            check("http://LOCALHOST./x", false),
            Err(UrlRefused::Private(_))
        ));
        assert!(matches!(
            check("http://0x7f000001/", false),
            Err(UrlRefused::Private(_))
        ));
        assert_eq!(check("ftp://example.com/", false), Err(UrlRefused::Scheme));
        assert!(check("http://127.0.0.1:8080/", true).is_ok());
    }

    #[tokio::test]
    async fn names_that_resolve_to_private_addresses_are_refused() {
        let client = builder(false)
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_else(|e| unreachable!("{e}"));
        // A subdomain of `localhost` is loopback (RFC 6761), refused as such, not merely
        // unresolved.
        let error = client
            .get("http://localtest.invalid.localhost:9/")
            .send()
            .await
            .err()
            .map(|e| describe(&e))
            .unwrap_or_default();
        assert!(error.contains("private, loopback"), "{error}");
        // `localhost` as a name goes through the resolver (no literal check on this path).
        let error = client
            .get("http://localhost:9/")
            .send()
            .await
            .err()
            .map(|e| describe(&e))
            .unwrap_or_default();
        assert!(error.contains("private, loopback"), "{error}");
    }
}
