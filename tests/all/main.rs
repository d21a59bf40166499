//! End-to-end tests through the real `weir` binary.

mod admin;
mod harness;
mod inspect;
mod new_plugin;
mod read_api;
mod streaming;
