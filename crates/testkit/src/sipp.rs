//! SIPp as a caller and callee for tests: written by a helper.
