//! End-to-end tests through the real `weir` binary.

mod harness;
mod inspect;
mod streaming;
