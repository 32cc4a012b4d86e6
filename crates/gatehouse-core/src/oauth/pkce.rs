//! RFC 7636 PKCE, S256 only: `plain` offers no protection against a stolen code and is refused.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// Why a PKCE parameter was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PkceError {
    #[error("code_challenge is required (PKCE with S256)")]
    MissingChallenge,
    #[error("code_challenge_method must be S256; plain is not accepted")]
    MethodNotS256,
    #[error("code_challenge must be 43 base64url characters (the S256 of the verifier)")]
    MalformedChallenge,
    #[error("code_verifier is required")]
    MissingVerifier,
    #[error("code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~]")]
    MalformedVerifier,
    #[error("code_verifier does not match the code_challenge")]
    Mismatch,
}

/// Checks the challenge sent to `/authorize`. A missing method means `plain` (RFC 7636 §4.3).
pub fn check_challenge(challenge: Option<&str>, method: Option<&str>) -> Result<(), PkceError> {
    let challenge = challenge
        .filter(|c| !c.is_empty())
        .ok_or(PkceError::MissingChallenge)?;
    if method != Some("S256") {
        return Err(PkceError::MethodNotS256);
    }
    if challenge.len() != 43
        || !challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(PkceError::MalformedChallenge);
    }
    Ok(())
}

/// Checks the verifier sent to `/token` against the stored challenge, in constant time.
pub fn verify(verifier: Option<&str>, challenge: &str) -> Result<(), PkceError> {
    let verifier = verifier
        .filter(|v| !v.is_empty())
        .ok_or(PkceError::MissingVerifier)?;
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if !well_formed {
        return Err(PkceError::MalformedVerifier);
    }
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    if crate::secret::hashes_equal(computed.as_bytes(), challenge.as_bytes()) {
        Ok(())
    } else {
        Err(PkceError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    type ChallengeCase<'a> = (Option<&'a str>, Option<&'a str>, Result<(), PkceError>);

    #[test]
    fn challenges() {
        let cases: &[ChallengeCase<'_>] = &[
            (Some(CHALLENGE), Some("S256"), Ok(())),
            (None, Some("S256"), Err(PkceError::MissingChallenge)),
            (Some(""), Some("S256"), Err(PkceError::MissingChallenge)),
            (Some(CHALLENGE), None, Err(PkceError::MethodNotS256)),
            (
                Some(CHALLENGE),
                Some("plain"),
                Err(PkceError::MethodNotS256),
            ),
            (Some(CHALLENGE), Some("s256"), Err(PkceError::MethodNotS256)),
            (
                Some("short"),
                Some("S256"),
                Err(PkceError::MalformedChallenge),
            ),
            (
                Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM"),
                Some("S256"),
                Err(PkceError::MalformedChallenge),
            ),
        ];
        for (challenge, method, want) in cases {
            assert_eq!(
                &check_challenge(*challenge, *method),
                want,
                "{challenge:?} {method:?}"
            );
        }
    }

    #[test]
    fn verifiers() {
        let cases: &[(Option<&str>, Result<(), PkceError>)] = &[
            (Some(VERIFIER), Ok(())),
            (None, Err(PkceError::MissingVerifier)),
            (Some("too-short"), Err(PkceError::MalformedVerifier)),
            (
                Some("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk!"),
                Err(PkceError::MalformedVerifier),
            ),
            (
                Some("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK"),
                Err(PkceError::Mismatch),
            ),
        ];
        for (verifier, want) in cases {
            assert_eq!(&verify(*verifier, CHALLENGE), want, "{verifier:?}");
        }
    }
}
