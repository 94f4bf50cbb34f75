//! Wasm instructions per hostile request: the built threat-score module (default config, block
//! mode) in the in-process host (`tests/wasm-host`, Wasmtime with fuel metering), each 64 KiB
//! hostile body of `threat_score::hostile::cases` (unit runs as text and JSON, structured
//! documents in their own carriers) sent once. Fuel counts the Wasm instructions the
//! module ran for the whole stream, deterministic on a shared machine: the exact companion of
//! `hostile_cpu` (Envoy CPU time, noisy), and closer to what V8 runs than a native callgrind
//! count (no SIMD `memchr`, the module's own allocator).
//!
//! ```text
//! cargo xtask build threat-score
//! cargo run --release -p envoy-harness --example hostile_fuel [-- NAME...]
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a measuring tool: fail loudly

use wasm_host::{Plugin, Request, RuntimeKind, Vm};

fn main() {
    let only: Vec<String> = std::env::args().skip(1).collect();
    let wasm = std::fs::read(wasm_host::module_path("threat-score").unwrap()).unwrap();
    let mut vm = Vm::start(
        RuntimeKind::Wasmtime,
        &wasm,
        &Plugin::new("threat-score", "{}"),
    )
    .unwrap();
    let mut send = |ct: &str, body: Vec<u8>| {
        let req = Request::new("POST", "/upload")
            .header("host", "shop.example")
            .header("content-type", ct)
            .header("content-length", body.len().to_string())
            .body(body);
        let out = vm.http(&req).unwrap();
        (out.fuel, out.status())
    };
    // The first request pays one-time work (allocator growth); not per-request cost.
    send("text/plain", b"warm up".to_vec());
    let (fuel, _) = send("text/plain", b"hello".to_vec());
    println!("{:>19} {:>9}: {fuel:>12} instructions", "small", "text");
    let mut total = 0u64;
    let mut cases = 0u64;
    for case in threat_score::hostile::cases() {
        if !only.is_empty() && !only.iter().any(|o| o == case.name) {
            continue;
        }
        let (ct, body) = case.body(64 * 1024);
        let len = body.len();
        let (fuel, status) = send(ct, body);
        total += fuel;
        cases += 1;
        println!(
            "{:>19} {:>9}: {fuel:>12} instructions (status {status}, {len} bytes)",
            case.name, case.carrier
        );
    }
    if let Some(mean) = total.checked_div(cases) {
        println!("{:>29}: {:>12} instructions", "mean", mean);
    }
}
