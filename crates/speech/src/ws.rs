//! What the WebSocket providers (Deepgram, ElevenLabs) share.

/// TLS for `wss`: the webpki roots with the `ring` provider, explicit so no process-wide default
/// provider is needed even if another crate enables a second one.
#[cfg(feature = "rustls")]
pub(crate) fn tls_config() -> Result<std::sync::Arc<rustls::ClientConfig>, crate::Error> {
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| crate::Error::Config { detail: format!("TLS: {e}") })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(std::sync::Arc::new(config))
}
