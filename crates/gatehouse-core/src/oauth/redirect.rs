//! Redirect URIs: what may be registered (RFC 8252 §7, OAuth 2.1 §2.3.1) and how a requested URI
//! is matched against the registered ones (exact, except the port of a loopback IP, RFC 8252 §7.3).

use url::Url;

/// Schemes that must never be a redirect target: they run code, read files or are not apps.
const FORBIDDEN_SCHEMES: &[&str] = &[
    "javascript",
    "data",
    "file",
    "vbscript",
    "about",
    "blob",
    "filesystem",
    "ftp",
    "ws",
    "wss",
];

/// Why a redirect URI cannot be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedirectError {
    #[error("redirect_uri is not an absolute URI")]
    NotAbsolute,
    #[error("redirect_uri must not contain a fragment")]
    Fragment,
    #[error("http redirect_uris must use a loopback host (127.0.0.1, [::1] or localhost)")]
    NonLoopbackHttp,
    #[error("the redirect_uri scheme is not allowed")]
    ForbiddenScheme,
    #[error("https redirect_uris need a host")]
    MissingHost,
}

fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Checks a URI a client wants to register: loopback http, https, or a private-use scheme.
pub fn validate(uri: &str) -> Result<(), RedirectError> {
    let url = Url::parse(uri).map_err(|_| RedirectError::NotAbsolute)?;
    if url.fragment().is_some() || uri.contains('#') {
        return Err(RedirectError::Fragment);
    }
    match url.scheme() {
        "http" if is_loopback_host(&url) => Ok(()),
        "http" => Err(RedirectError::NonLoopbackHttp),
        "https" if url.host().is_some() => Ok(()),
        "https" => Err(RedirectError::MissingHost),
        s if FORBIDDEN_SCHEMES.contains(&s) => Err(RedirectError::ForbiddenScheme),
        _ => Ok(()),
    }
}

/// Whether `requested` matches one of `registered`: byte-for-byte, or for loopback http URIs,
/// everything but the port (native apps bind an ephemeral port, RFC 8252 §7.3).
pub fn matches(registered: &[String], requested: &str) -> bool {
    if registered.iter().any(|r| r == requested) {
        return true;
    }
    let Ok(req) = Url::parse(requested) else {
        return false;
    };
    if req.scheme() != "http" || !is_loopback_host(&req) || requested.contains('#') {
        return false;
    }
    registered.iter().any(|r| {
        Url::parse(r).is_ok_and(|reg| {
            reg.scheme() == "http"
                && is_loopback_host(&reg)
                && reg.host() == req.host()
                && reg.path() == req.path()
                && reg.query() == req.query()
                && reg.username() == req.username()
                && reg.password() == req.password()
        })
    })
}

/// The host a person sees and remembered consent is keyed on: the host name for http(s) (no
/// port), or `scheme:` for a private-use scheme.
pub fn display_host(uri: &str) -> String {
    match Url::parse(uri) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => u.host_str().unwrap_or("").to_owned(),
        Ok(u) => format!("{}:", u.scheme()),
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration() {
        let cases: &[(&str, Result<(), RedirectError>)] = &[
            ("http://127.0.0.1:8080/callback", Ok(())),
            ("http://127.0.0.1/callback", Ok(())),
            ("http://[::1]:9/cb", Ok(())),
            ("http://localhost:33418/callback", Ok(())),
            ("https://app.example.com/cb", Ok(())),
            ("com.example.app:/oauth2redirect", Ok(())),
            ("cursor://anysphere.cursor-retrieval/oauth/callback", Ok(())),
            ("http://example.com/cb", Err(RedirectError::NonLoopbackHttp)),
            (
                "http://127.0.0.1.evil.com/cb",
                Err(RedirectError::NonLoopbackHttp),
            ),
            (
                "http://127.0.0.1:8080/cb#frag",
                Err(RedirectError::Fragment),
            ),
            ("http://127.0.0.1:8080/cb#", Err(RedirectError::Fragment)),
            ("javascript:alert(1)", Err(RedirectError::ForbiddenScheme)),
            ("data:text/html,hi", Err(RedirectError::ForbiddenScheme)),
            ("file:///etc/passwd", Err(RedirectError::ForbiddenScheme)),
            ("/relative/cb", Err(RedirectError::NotAbsolute)),
            ("", Err(RedirectError::NotAbsolute)),
        ];
        for (uri, want) in cases {
            assert_eq!(&validate(uri), want, "{uri}");
        }
    }

    #[test]
    fn matching() {
        let reg = vec![
            "http://127.0.0.1:8080/callback".to_owned(),
            "https://app.example.com/cb".to_owned(),
            "http://localhost/cb".to_owned(),
        ];
        let cases: &[(&str, bool)] = &[
            ("http://127.0.0.1:8080/callback", true),
            ("http://127.0.0.1:51234/callback", true),
            ("http://127.0.0.1/callback", true),
            ("http://localhost:4000/cb", true),
            ("http://127.0.0.1:8080/callback/", false),
            ("http://127.0.0.1:8080/other", false),
            ("http://127.0.0.1:8080/callback?x=1", false),
            ("http://[::1]:8080/callback", false),
            ("http://localhost:8080/callback", false),
            ("https://app.example.com/cb", true),
            ("https://app.example.com:444/cb", false),
            ("https://app.example.com/cb?x", false),
            ("https://evil.example.com/cb", false),
            ("http://127.0.0.1:8080/callback#x", false),
        ];
        for (uri, want) in cases {
            assert_eq!(matches(&reg, uri), *want, "{uri}");
        }
    }

    #[test]
    fn hosts() {
        assert_eq!(display_host("http://127.0.0.1:5000/cb"), "127.0.0.1");
        assert_eq!(
            display_host("https://app.example.com/cb"),
            "app.example.com"
        );
        assert_eq!(display_host("com.example.app:/cb"), "com.example.app:");
    }
}
