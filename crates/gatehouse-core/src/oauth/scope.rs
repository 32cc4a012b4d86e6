//! Scope and resource parameters: RFC 6749 §3.3 scope syntax and RFC 8707 resource indicators.

use url::Url;

/// Parses a space-delimited scope string (RFC 6749 §3.3). Each scope token is 1*NQCHAR.
/// Duplicates are dropped, order kept. `None` means the string was malformed.
pub fn parse(scope: &str) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for token in scope.split(' ').filter(|t| !t.is_empty()) {
        let nqchar = token
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
        if !nqchar || token.len() > 256 {
            return None;
        }
        if !out.iter().any(|s| s == token) {
            out.push(token.to_owned());
        }
    }
    if out.len() > 64 {
        return None;
    }
    Some(out)
}

/// Whether every item of `wanted` is in `allowed`.
pub fn is_subset(wanted: &[String], allowed: &[String]) -> bool {
    wanted.iter().all(|w| allowed.contains(w))
}

/// Checks RFC 8707 resource indicators: absolute URIs without a fragment. Returns them deduplicated.
pub fn parse_resources(values: &[String]) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    if values.len() > 16 {
        return Err("too many resource parameters".into());
    }
    for v in values {
        let url = Url::parse(v).map_err(|_| format!("resource {v:?} is not an absolute URI"))?;
        if url.fragment().is_some() || v.contains('#') {
            return Err(format!("resource {v:?} must not contain a fragment"));
        }
        if url.cannot_be_a_base() && !matches!(url.scheme(), "urn") {
            return Err(format!("resource {v:?} is not a usable absolute URI"));
        }
        if !out.contains(v) {
            out.push(v.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_syntax() {
        let cases: &[(&str, Option<&[&str]>)] = &[
            ("", Some(&[])),
            ("read", Some(&["read"])),
            ("read write", Some(&["read", "write"])),
            ("read  write read", Some(&["read", "write"])),
            (
                "mail:send https://api.example.com/x",
                Some(&["mail:send", "https://api.example.com/x"]),
            ),
            ("a\"b", None),
            ("a\\b", None),
            ("a\tb", None),
            ("caf\u{e9}", None),
        ];
        for (input, want) in cases {
            let got = parse(input);
            let want = want.map(|w| w.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            assert_eq!(got, want, "{input:?}");
        }
    }

    #[test]
    fn resources() {
        let ok = |v: &[&str]| parse_resources(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert!(ok(&["https://api.example.com/"]).is_ok());
        assert!(ok(&["http://127.0.0.1:8080/mcp/github"]).is_ok());
        assert!(ok(&["urn:example:resource"]).is_ok());
        assert!(ok(&["/relative"]).is_err());
        assert!(ok(&["https://api.example.com/#frag"]).is_err());
        assert!(ok(&["not a uri"]).is_err());
        assert_eq!(
            ok(&["https://a.example/", "https://a.example/"])
                .unwrap()
                .len(),
            1
        );
    }
}
