//! Helpers live in the e2e test binary.
