//! What every OpenAI-compatible endpoint (chat, transcription, speech) is built from: its URL
//! under `base_url`, the bearer key as a sensitive header, and an HTTP client.

use std::time::Duration;

use reqwest::header::HeaderValue;

use crate::{Error, Secret};

/// A checked endpoint.
pub(crate) struct Endpoint {
    /// One client per provider: its pool keeps connections warm across calls.
    pub client: reqwest::Client,
    /// `{base_url}/{path}`.
    pub url: reqwest::Url,
    /// `Bearer <key>`, marked sensitive so reqwest's own `Debug` never prints it; `None` for
    /// servers without authentication.
    pub auth: Option<HeaderValue>,
}

impl Endpoint {
    /// `path` under `base_url` with `api_key`. Fails on a base URL that is not http(s) or a key
    /// that cannot be a header value.
    pub fn new(base_url: &str, path: &str, api_key: Option<&Secret>, connect_timeout: Duration) -> Result<Self, Error> {
        let base = base_url.trim_end_matches('/');
        let url = reqwest::Url::parse(&format!("{base}/{path}")).map_err(|e| Error::Config { detail: format!("base_url {base:?}: {e}") })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::Config { detail: format!("base_url {base:?}: not http or https") });
        }
        let auth = match api_key {
            Some(key) if !key.is_empty() => {
                let mut v = HeaderValue::from_str(&format!("Bearer {}", key.expose()))
                    .map_err(|_| Error::Config { detail: "api_key contains characters not allowed in a header".into() })?;
                v.set_sensitive(true);
                Some(v)
            }
            _ => None,
        };
        // The connect timeout is also enforced by the first-byte timeout; giving it to reqwest
        // lets a connect failure be reported as such rather than as a slow answer.
        let client = reqwest::Client::builder().connect_timeout(connect_timeout).build().map_err(|e| Error::Config { detail: format!("HTTP client: {e}") })?;
        Ok(Self { client, url, auth })
    }
}
