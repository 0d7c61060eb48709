//! Integration tests: a real server on a real socket.
//!
//! One test binary; the modules live in `tests/wire/`.

mod wire {
    mod admin;
    mod handshake;
    mod hostile;
    mod lifecycle;
    mod support;
}
