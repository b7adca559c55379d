//! Splitting absolute URLs into scheme, authority and path. Deliberately small:
//! plugins get URLs from config and providers, not from arbitrary users, and the
//! host re-validates whatever it sends.

/// `scheme://authority/path?query`, without the fragment.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct UrlParts<'a> {
    pub scheme: &'a str,
    pub authority: &'a str,
    /// Starts with `/`; `/` when the URL had no path.
    pub path_and_query: &'a str,
}

/// Splits an absolute URL; `None` when it has no `scheme://authority`.
pub(crate) fn split(url: &str) -> Option<UrlParts<'_>> {
    let url = strip_fragment(url);
    let (scheme, rest) = url.split_once("://")?;
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    {
        return None;
    }
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    if authority.is_empty() {
        return None;
    }
    let path_and_query = if tail.is_empty() { "/" } else { tail };
    Some(UrlParts {
        scheme,
        authority,
        path_and_query,
    })
}

/// The path and query of an absolute URL, or the input itself when it is
/// already relative (`/hooks/x?y=1`).
pub(crate) fn path_and_query(url: &str) -> &str {
    match split(url) {
        Some(parts) => parts.path_and_query,
        None => strip_fragment(url),
    }
}

fn strip_fragment(url: &str) -> &str {
    url.split_once('#').map_or(url, |(before, _)| before)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_absolute_urls() {
        assert_eq!(
            split("https://api.twilio.com:8443/2010-04-01/x.json?a=1#frag"),
            Some(UrlParts {
                scheme: "https",
                authority: "api.twilio.com:8443",
                path_and_query: "/2010-04-01/x.json?a=1",
            })
        );
        assert_eq!(split("http://127.0.0.1:9").unwrap().path_and_query, "/");
        assert_eq!(split("http://h?x=1").unwrap().path_and_query, "?x=1");
        assert_eq!(split("/relative"), None);
        assert_eq!(split("http:///nohost"), None);
    }

    #[test]
    fn path_and_query_of_relative_urls() {
        assert_eq!(path_and_query("/hooks/a?b=c#d"), "/hooks/a?b=c");
        assert_eq!(path_and_query("https://x.test/hooks/a"), "/hooks/a");
    }
}
