//! Secrets handed to clients (tokens, codes, client secrets): generation, hashing, and a type that
//! cannot leak through `Debug`, `Serialize` or a forgotten buffer.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// What a secret is for; each has its own prefix so secret scanners can spot a leaked one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    AccessToken,
    RefreshToken,
    AuthorizationCode,
    ClientSecret,
    /// CIBA `auth_req_id`: whoever holds it collects the tokens.
    AuthReqId,
    /// RFC 8628 `device_code`.
    DeviceCode,
}

impl SecretKind {
    pub fn prefix(self) -> &'static str {
        match self {
            SecretKind::AccessToken => "gth_at_",
            SecretKind::RefreshToken => "gth_rt_",
            SecretKind::AuthorizationCode => "gth_ac_",
            SecretKind::ClientSecret => "gth_cs_",
            SecretKind::AuthReqId => "gth_ar_",
            SecretKind::DeviceCode => "gth_dc_",
        }
    }
}

/// A secret string. `Debug` shows only a Gatehouse token's public prefix (`gth_at_`); there is no `Serialize`; memory is zeroed on drop.
/// [`Secret::expose`] is the one way to read it, used where the secret must go on the wire.
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// 256 random bits, base64url, behind the kind's prefix.
    pub fn generate(kind: SecretKind) -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(bytes.as_mut());
        let mut s = String::with_capacity(64);
        s.push_str(kind.prefix());
        URL_SAFE_NO_PAD.encode_string(bytes.as_ref(), &mut s);
        Secret(Zeroizing::new(s))
    }

    /// Wraps a secret presented by a client.
    pub fn from_presented(s: impl Into<String>) -> Self {
        Secret(Zeroizing::new(s.into()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The SHA-256 of the secret: what the store keeps. Tokens carry 256 bits of entropy, so a
    /// plain hash (not a password KDF) is the right tool and keeps lookups fast.
    pub fn hash(&self) -> TokenHash {
        TokenHash::of(self.expose())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Only Gatehouse's own public prefix (`gth_at_`, `gth_rt_`...) is shown: any other text
        // may be an upstream key with no separator at all, so none of it is printed.
        match self.0.get(..7).filter(|p| p.starts_with("gth_")) {
            Some(kind) => write!(f, "Secret({kind}…)"),
            None => f.write_str("Secret(…)"),
        }
    }
}

/// SHA-256 of a secret.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    pub fn of(secret: &str) -> Self {
        TokenHash(Sha256::digest(secret.as_bytes()).into())
    }
    /// A short public identifier for audit events: the first 8 bytes of the hash, in hex.
    /// It names a token without revealing it.
    pub fn id(&self) -> String {
        hex::encode(&self.0[..8])
    }
}

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenHash({})", self.id())
    }
}

/// Constant-time comparison of two hashes.
pub fn hashes_equal(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// A random identifier (not a secret) such as a client id or approval id: 128 bits, hex.
pub fn random_id(prefix: &str) -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let s = Secret::generate(SecretKind::AccessToken);
        let shown = format!("{s:?}");
        assert_eq!(shown, "Secret(gth_at_…)");
        assert!(!shown.contains(&s.expose()[7..]));
    }

    #[test]
    fn debug_of_a_foreign_secret_shows_none_of_it() {
        // Regression: an upstream key without `_` (e.g. `sk-abc123`) was printed whole.
        for text in ["sk-abc123", "ghp_abcdef", "gth", "", "Bearer xyz"] {
            let shown = format!("{:?}", Secret::from_presented(text));
            assert_eq!(shown, "Secret(…)", "{text:?}");
        }
    }

    #[test]
    fn secrets_are_prefixed_and_long() {
        for kind in [
            SecretKind::AccessToken,
            SecretKind::RefreshToken,
            SecretKind::AuthorizationCode,
            SecretKind::ClientSecret,
            SecretKind::AuthReqId,
            SecretKind::DeviceCode,
        ] {
            let s = Secret::generate(kind);
            assert!(s.expose().starts_with(kind.prefix()));
            assert_eq!(s.expose().len(), kind.prefix().len() + 43);
        }
        assert_ne!(
            Secret::generate(SecretKind::AccessToken).expose(),
            Secret::generate(SecretKind::AccessToken).expose()
        );
    }
}
