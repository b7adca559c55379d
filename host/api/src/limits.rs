//! How large a request body each kind of route accepts. A body over its limit is
//! answered 413 before a handler reads it.

/// Body limits per kind of route, with defaults a real deployment can keep.
#[derive(Debug, Clone)]
pub struct BodyLimits {
    /// `/api/v1`: JSON from agents and admins.
    pub api_bytes: usize,
    /// `/webchat/v1`: a visitor's name or message.
    pub webchat_bytes: usize,
    /// `/hooks`: providers' webhooks, which may carry media descriptions.
    pub webhook_bytes: usize,
}

impl Default for BodyLimits {
    fn default() -> Self {
        BodyLimits {
            api_bytes: 256 * 1024,
            webchat_bytes: 64 * 1024,
            webhook_bytes: 2 << 20,
        }
    }
}

/// Limits on each HTTP connection and request, against slow and oversized clients
/// (slowloris). Defaults a real deployment can keep, close to nginx's.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// The whole request head (request line and headers) must arrive within this
    /// time of the server starting to wait for it. The same timer runs while a
    /// keep-alive connection waits for its next request, so it is also the idle
    /// timeout: an idle connection is closed when it runs out.
    pub header_timeout: std::time::Duration,
    /// The largest request head, in bytes (at least 8 KiB); beyond it the
    /// connection is answered 431 and closed.
    pub max_header_bytes: usize,
    /// The most header fields one request may carry.
    pub max_headers: usize,
    /// A request must be read and answered within this time (a slow body upload
    /// included); past it the answer is 408. WebSockets are not bound by it once
    /// upgraded.
    pub request_timeout: std::time::Duration,
    /// Load balancers and proxies in front of this host. A request from one of
    /// them is taken to come from the right-most address in `X-Forwarded-For` that
    /// is not itself a trusted proxy, so per-client limits (logins, webchat,
    /// webhooks) count clients, not the proxy. Empty: the TCP peer is the client,
    /// and `X-Forwarded-For` is ignored (anyone can write it).
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl ConnectionLimits {
    /// The client behind a request from `peer` carrying these headers.
    pub fn client_address(
        &self,
        peer: std::net::IpAddr,
        headers: &axum::http::HeaderMap,
    ) -> std::net::IpAddr {
        let trusted = |ip: &std::net::IpAddr| self.trusted_proxies.iter().any(|n| n.contains(ip));
        if !trusted(&peer) {
            return peer;
        }
        let hops: Vec<std::net::IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map_while(|hop| hop.trim().parse().ok())
            .collect();
        hops.into_iter()
            .rev()
            .find(|ip| !trusted(ip))
            .unwrap_or(peer)
    }
}

/// Failed webhook verifications per client address. A provider's real webhooks
/// verify and are never limited; a source that keeps sending forged or broken ones
/// gets 429 with `Retry-After` before the connector runs.
#[derive(Debug, Clone)]
pub struct WebhookLimits {
    /// Failures a source may have per minute, on average…
    pub failures_per_minute: u32,
    /// …with bursts of this many. 0 per minute turns the limit off.
    pub failure_burst: u32,
}

impl Default for WebhookLimits {
    fn default() -> Self {
        WebhookLimits {
            failures_per_minute: 60,
            failure_burst: 30,
        }
    }
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_timeout: std::time::Duration::from_secs(15),
            max_header_bytes: 32 * 1024,
            max_headers: 100,
            request_timeout: std::time::Duration::from_secs(30),
            trusted_proxies: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use axum::http::HeaderMap;

    use super::*;

    #[test]
    fn the_client_behind_trusted_proxies_only() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "198.51.100.9, 203.0.113.7, 10.0.0.2".parse().unwrap(),
        );
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let open = ConnectionLimits::default();
        assert_eq!(
            open.client_address(proxy, &headers),
            proxy,
            "no proxy is trusted"
        );
        let behind = ConnectionLimits {
            trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
            ..ConnectionLimits::default()
        };
        assert_eq!(
            behind.client_address(proxy, &headers),
            "203.0.113.7".parse::<IpAddr>().unwrap(),
            "the right-most untrusted hop; what the client wrote before it is not believed"
        );
        let stranger: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(behind.client_address(stranger, &headers), stranger);
        assert_eq!(behind.client_address(proxy, &HeaderMap::new()), proxy);
    }
}
