//! Black-box tests: the real `rewind` binary on a random port, driven over HTTP.

mod api;
mod support;
mod wire_client;
