//! `wasm-host`: an in-process proxy-wasm host for the built filter modules.
//!
//! Runs the same `target/modules/*.wasm` Envoy serves, on Wasmtime (Cranelift) or on `wasmi`
//! (an interpreter), with instruction metering (fuel), and drives them the way Envoy does:
//! VM start, `on_configure`, then one context per HTTP stream or TCP connection. Tests of a
//! module take milliseconds instead of an Envoy start-up, verdicts can be compared across
//! runtimes, and the fuel a request uses is an exact, noise-free cost.
//!
//! ```no_run
//! use wasm_host::{Plugin, Request, RuntimeKind, Vm};
//! let mut vm = Vm::load(RuntimeKind::Wasmtime, "example", &Plugin::new("example", "{}"))?;
//! let out = vm.http(&Request::new("GET", "/hello").header("x-deny", "1"))?;
//! assert_eq!(out.status(), 403);
//! # Ok::<(), anyhow::Error>(())
//! ```
//!
//! * [`abi`]: the ABI 0.2.1 host calls and WASI, once for both runtimes; `ENVOY:` comments mark
//!   where Envoy's behaviour is followed over the spec's.
//! * [`runtime`]: the [`Runtime`] trait; `rt_wasmtime` and `rt_wasmi` implement it.
//! * [`host`]: [`Vm`], the lifecycle driver (HTTP streams, TCP connections, ticks, the
//!   answers to gRPC calls from a test's responder).

pub mod abi;
pub mod corpus;
pub mod front;
pub mod host;
pub mod instructions;
mod rt_wasmi;
mod rt_wasmtime;
pub mod runtime;

pub use abi::{GrpcCall, HostState, HostTrap, LocalReply};
pub use host::{
    header, module_path, modules_dir, Connection, GrpcReply, GrpcResponder, HttpOutcome, Plugin,
    Request, Response, TcpOutcome, TcpVerdict, Verdict, Vm, GRPC_TIMEOUT,
};
pub use runtime::{CallError, Instance, Runtime, RuntimeKind, Val};
