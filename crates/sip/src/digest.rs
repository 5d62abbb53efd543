//! Digest authentication (RFC 7616, RFC 8760): written by a helper.
