//! Well-known OAuth providers a connection can start from: their endpoints, default scopes and
//! API base URL, so the person only brings a client id (and secret) of their own OAuth app.

/// A well-known provider's OAuth endpoints and API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProviderPreset {
    /// The name used on the command line and stored as the connection's provider.
    pub name: &'static str,
    pub authorization_url: &'static str,
    pub token_url: &'static str,
    /// The RFC 7009 revocation endpoint; `None` when the provider has none (its tokens are then
    /// only deleted locally on disconnect, and the audit says `not_supported`).
    pub revocation_url: Option<&'static str>,
    pub default_scopes: &'static [&'static str],
    /// Gateway paths are appended to it.
    pub api_base_url: &'static str,
    /// Extra authorization-request parameters the provider needs to hand out a refresh token.
    pub extra_authorize_params: &'static [(&'static str, &'static str)],
}

/// The presets, by name.
pub const PRESETS: &[ProviderPreset] = &[
    // GitHub's token revocation is `DELETE /applications/{client_id}/token`, not RFC 7009.
    ProviderPreset {
        name: "github",
        authorization_url: "https://github.com/login/oauth/authorize",
        token_url: "https://github.com/login/oauth/access_token",
        revocation_url: None,
        default_scopes: &["read:user"],
        api_base_url: "https://api.github.com",
        extra_authorize_params: &[],
    },
    ProviderPreset {
        name: "google",
        authorization_url: "https://accounts.google.com/o/oauth2/v2/auth",
        token_url: "https://oauth2.googleapis.com/token",
        revocation_url: Some("https://oauth2.googleapis.com/revoke"),
        default_scopes: &["openid", "email", "profile"],
        api_base_url: "https://www.googleapis.com",
        // Without both, Google issues no refresh token (or only on the first consent).
        extra_authorize_params: &[("access_type", "offline"), ("prompt", "consent")],
    },
    // Slack's `auth.revoke` revokes the token it is called with; it is not RFC 7009.
    ProviderPreset {
        name: "slack",
        authorization_url: "https://slack.com/oauth/v2/authorize",
        token_url: "https://slack.com/api/oauth.v2.access",
        revocation_url: None,
        default_scopes: &["channels:read", "chat:write"],
        api_base_url: "https://slack.com/api",
        extra_authorize_params: &[],
    },
    // The Microsoft identity platform has no revocation endpoint for a single token.
    ProviderPreset {
        name: "microsoft",
        authorization_url: "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
        token_url: "https://login.microsoftonline.com/common/oauth2/v2.0/token",
        revocation_url: None,
        default_scopes: &["offline_access", "User.Read"],
        api_base_url: "https://graph.microsoft.com/v1.0",
        extra_authorize_params: &[],
    },
];

/// The preset called `name` (case-insensitive).
pub fn preset(name: &str) -> Option<&'static ProviderPreset> {
    PRESETS.iter().find(|p| p.name.eq_ignore_ascii_case(name))
}

/// The names of the presets, for help and error messages.
pub fn preset_names() -> Vec<&'static str> {
    PRESETS.iter().map(|p| p.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_is_https_with_scopes_and_a_unique_name() {
        let mut names = std::collections::HashSet::new();
        for p in PRESETS {
            assert!(names.insert(p.name), "{} twice", p.name);
            assert!(!p.default_scopes.is_empty(), "{}", p.name);
            let urls = [
                Some(p.authorization_url),
                Some(p.token_url),
                p.revocation_url,
                Some(p.api_base_url),
            ];
            for u in urls.into_iter().flatten() {
                let url = url::Url::parse(u).expect(u);
                assert_eq!(url.scheme(), "https", "{u}");
                assert!(url.query().is_none(), "{u}");
            }
        }
    }

    #[test]
    fn lookup_is_case_insensitive_and_knows_the_four() {
        assert_eq!(preset_names(), ["github", "google", "slack", "microsoft"]);
        assert_eq!(preset("GitHub").map(|p| p.name), Some("github"));
        assert_eq!(
            preset("google").and_then(|p| p.revocation_url),
            Some("https://oauth2.googleapis.com/revoke")
        );
        assert!(preset("microsoft").is_some_and(|p| p.revocation_url.is_none()));
        assert!(preset("microsoft").is_some_and(|p| p.default_scopes.contains(&"offline_access")));
        assert_eq!(preset("gitlab"), None);
    }
}
