//! End-to-end tests of the real binaries.
