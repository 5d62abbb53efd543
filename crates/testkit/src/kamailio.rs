//! Kamailio as a registrar for tests: written by a helper.
