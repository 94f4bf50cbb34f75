//! Test fixtures shared by the filters' native tests, the e2e harness (`envoy-harness`) and
//! xtask's tests, so each is written once:
//!
//! * [`tls`]: the first flight of a real TLS client (rustls), for ClientHello parsing and SNI
//!   routing tests.
//! * [`rls`]: the messages of Envoy's rate-limit service protocol, for the service the e2e
//!   tests run and the unit tests of policy's codec.
//!
//! A dev-dependency only: nothing here reaches a module, and it may panic (it is test code).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod rls;
pub mod tls;
