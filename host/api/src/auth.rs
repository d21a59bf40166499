//! Who may do what: bearer tokens with a role (`read`, `ingest`, `admin`), from the
//! configuration or the environment, compared in constant time.

use axum::http::{HeaderMap, header};
use sha2::Digest as _;

use crate::api_error::ApiError;
use weir_config::{AdminConfig, Role};

/// A known token: its name (the audit log's "who"), role and SHA-256, and the token
/// itself, which verifies AWS SigV4 signatures (the Kinesis-compatible endpoint): a
/// signature can only be checked by recomputing it with the secret.
#[derive(Clone)]
struct Token {
    name: String,
    role: Role,
    digest: [u8; 32],
    secret: String,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token").field("name", &self.name).field("role", &self.role).finish_non_exhaustive()
    }
}

/// Who may use the admin API (and, with `server.require_token`, the ingest route and the
/// read API), and how large an upload may be.
#[derive(Debug, Clone)]
pub struct AdminAccess {
    tokens: Vec<Token>,
    max_upload_bytes: usize,
    require_token: bool,
}

/// The token of an `Authorization: Bearer <token>` value; the scheme's case does not
/// matter (RFC 9110, 11.1).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|token| !token.is_empty())
}

fn digest(token: &str) -> [u8; 32] {
    sha2::Sha256::digest(token.as_bytes()).into()
}

impl AdminAccess {
    /// The tokens of `[admin.tokens]`, read from their environment variables, or, without
    /// any, `WEIR_ADMIN_TOKEN` (role admin), `WEIR_READ_TOKEN` (role read) and
    /// `WEIR_INGEST_TOKEN` (role ingest) when set. With `require_token`, the ingest route
    /// and the read API ask for a token too.
    ///
    /// # Errors
    /// A configured token whose environment variable is unset or empty; `require_token`
    /// without any token.
    pub fn from_config(config: &AdminConfig, require_token: bool) -> anyhow::Result<Self> {
        let mut tokens = Vec::new();
        for token in &config.tokens {
            let value = std::env::var(&token.env).unwrap_or_default();
            anyhow::ensure!(
                !value.is_empty(),
                "admin token {}: the environment variable {} is not set; set it to the token's secret",
                token.name,
                token.env
            );
            tokens.push(Token { name: token.name.clone(), role: token.role, digest: digest(&value), secret: value });
        }
        if config.tokens.is_empty() {
            for (env, name, role) in [
                ("WEIR_ADMIN_TOKEN", "admin", Role::Admin),
                ("WEIR_READ_TOKEN", "read", Role::Read),
                ("WEIR_INGEST_TOKEN", "ingest", Role::Ingest),
            ] {
                if let Ok(value) = std::env::var(env)
                    && !value.is_empty()
                {
                    tokens.push(Token { name: name.to_owned(), role, digest: digest(&value), secret: value });
                }
            }
        }
        anyhow::ensure!(
            !require_token || !tokens.is_empty(),
            "server.require_token is true but no token is configured, so nobody could send or read data; \
             set WEIR_INGEST_TOKEN, WEIR_READ_TOKEN and WEIR_ADMIN_TOKEN, or add [admin.tokens.NAME] entries"
        );
        Ok(Self { tokens, max_upload_bytes: config.max_upload_bytes.bytes_usize(), require_token })
    }

    /// The largest plugin upload accepted, in bytes (`admin.max_upload_bytes`).
    pub fn max_upload_bytes(&self) -> usize {
        self.max_upload_bytes
    }

    /// Whether the ingest route and the read API ask for a token.
    pub fn requires_data_tokens(&self) -> bool {
        self.require_token
    }

    /// Whether any token is configured.
    pub fn enabled(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// The secret and role of the token named `name`: what a SigV4 signature made with
    /// that name as the access key id is checked with.
    pub(crate) fn signing_secret(&self, name: &str) -> Option<(&str, Role)> {
        self.tokens.iter().find(|t| t.name == name).map(|t| (t.secret.as_str(), t.role))
    }

    /// The name of the token in `headers` if it may do what `needed` allows.
    pub(crate) fn authorize(&self, headers: &HeaderMap, needed: Role) -> Result<String, ApiError> {
        let (name, role) = self.identify(headers)?;
        if !role.allows(needed) {
            return Err(ApiError::forbidden(format!(
                "token {name} has the {} role; this needs the {} role",
                role.as_str(),
                needed.as_str()
            )));
        }
        Ok(name)
    }

    /// The name and role of the token in `headers`, whatever it may do.
    pub(crate) fn identify(&self, headers: &HeaderMap) -> Result<(String, Role), ApiError> {
        if self.tokens.is_empty() {
            return Err(ApiError::unauthorized(
                "the admin API is disabled: no token is configured; set WEIR_ADMIN_TOKEN (and WEIR_READ_TOKEN) before starting weir, or add [admin.tokens.NAME] to the configuration",
            ));
        }
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token)
            .ok_or_else(|| ApiError::unauthorized("send the token as `Authorization: Bearer <token>`"))?;
        let presented = digest(presented);
        // Every byte of every token is compared, whatever matches: the time taken does
        // not tell which bytes of which token were right.
        let mut found: Option<&Token> = None;
        for token in &self.tokens {
            let difference = token.digest.iter().zip(&presented).fold(0u8, |acc, (a, b)| acc | (a ^ b));
            if difference == 0 {
                found = Some(token);
            }
        }
        let token = found.ok_or_else(|| ApiError::unauthorized("the token is not valid"))?;
        Ok((token.name.clone(), token.role))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_read_in_any_case_and_nothing_else_is() {
        for value in ["Bearer s3cret", "bearer s3cret", "BEARER s3cret", "  Bearer   s3cret  "] {
            assert_eq!(bearer_token(value), Some("s3cret"), "{value:?}");
        }
        for value in ["Basic s3cret", "Bearer", "Bearer   ", "Bearers3cret", "s3cret"] {
            assert_eq!(bearer_token(value), None, "{value:?}");
        }
    }
}
