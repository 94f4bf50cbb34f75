//! Corpus rows through a module in-process: each row is turned into what Envoy's connection
//! manager would hand the filter ([`crate::front`]), run through a fresh stream of one VM, and
//! classified exactly as `envoy_harness::corpus` classifies Envoy's answers, so reports and
//! per-row verdicts compare one to one.
//!
//! The Envoy replay's upstream is `envoy_harness::EchoServer` (hyper). A request the filter
//! forwards still has to get past hyper's request-line parser there; what it refuses (a `:path`
//! outside the `http` crate's URI grammar, such as `<`, `>` or `"` in a query) comes back as
//! hyper's own 400 and is classified "rejected". [`upstream_accepts`] applies that same parser
//! here, so a forwarded row is classified as the Envoy replay would see it.

use crate::front;
use crate::host::{Plugin, Verdict, Vm};
use crate::runtime::RuntimeKind;
use envoy_harness::corpus::{Outcome, Row, RowResult};

/// One row's result plus the fuel its stream used (0 when Envoy's front end answered).
#[derive(Debug, Clone)]
pub struct FuelResult {
    pub result: RowResult,
    pub fuel: u64,
}

/// Replay `rows` through the module `wasm` (plugin `name`) configured with `config` on
/// `runtime`; one VM for all rows, as one Envoy worker would. `block_error` is the `error` code
/// of the filter's 403 body.
pub fn replay(
    runtime: RuntimeKind,
    wasm: &[u8],
    name: &str,
    config: &str,
    rows: &[Row],
    block_error: &str,
) -> anyhow::Result<Vec<FuelResult>> {
    let mut vm = Vm::start(runtime, wasm, &Plugin::new(name, config))?;
    rows.iter()
        .enumerate()
        .map(|(i, row)| replay_row(&mut vm, row, i, block_error))
        .collect()
}

/// One row through `vm`.
pub fn replay_row(
    vm: &mut Vm,
    row: &Row,
    index: usize,
    block_error: &str,
) -> anyhow::Result<FuelResult> {
    let req = match front::filter_input(
        &row.method,
        &row.uri,
        &row.version,
        &row.headers,
        row.body.as_bytes(),
        index,
    ) {
        Ok(r) => r,
        Err(reply) => {
            let outcome = if (400..500).contains(&reply.status) {
                Outcome::RejectedByEnvoy
            } else {
                Outcome::Other
            };
            return Ok(FuelResult {
                result: RowResult {
                    status: reply.status,
                    outcome,
                },
                fuel: 0,
            });
        }
    };
    let out = vm
        .http(&req)
        .map_err(|e| anyhow::anyhow!("row {}: {e:#}", row.id))?;
    let status = out.status() as u16;
    let outcome = match &out.verdict {
        Verdict::Forwarded if !upstream_accepts(&out.upstream_headers) => {
            return Ok(FuelResult {
                result: RowResult {
                    status: 400,
                    outcome: Outcome::RejectedByEnvoy,
                },
                fuel: out.fuel,
            });
        }
        Verdict::Forwarded => Outcome::Passed,
        Verdict::LocalReply(r) => {
            // A HEAD response carries no body: the client cannot read the filter's error code.
            let body: &[u8] = if row.method.eq_ignore_ascii_case("HEAD") {
                b""
            } else {
                &r.body
            };
            let code = serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v["error"].as_str().map(String::from));
            if r.status == 403 && code.as_deref() == Some(block_error) {
                Outcome::Blocked
            } else if (400..500).contains(&r.status) {
                Outcome::RejectedByEnvoy
            } else {
                Outcome::Other
            }
        }
        Verdict::Reset | Verdict::Stalled => Outcome::Other,
    };
    Ok(FuelResult {
        result: RowResult { status, outcome },
        fuel: out.fuel,
    })
}

/// Whether the replay's upstream (hyper, `envoy_harness::EchoServer`) accepts the request line
/// Envoy sends it: hyper parses an origin-form target with the `http` crate's `Uri`, the same
/// parser used here. A request without `:path` (CONNECT) is not an origin-form request line and
/// is left to the verdict.
pub fn upstream_accepts(upstream_headers: &[(String, Vec<u8>)]) -> bool {
    match crate::header(upstream_headers, ":path") {
        Some(path) => http::Uri::try_from(path).is_ok(),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::upstream_accepts;

    #[test]
    fn the_upstream_refuses_what_hypers_uri_grammar_refuses() {
        let req = |p: &str| vec![(":path".to_string(), p.as_bytes().to_vec())];
        assert!(upstream_accepts(&req("/get?a=1&b=%3C")));
        assert!(upstream_accepts(&req("/p/{\"json\"}")));
        assert!(!upstream_accepts(&req("/get?code=>/tmp")));
        assert!(!upstream_accepts(&req("/get?a=42<=>42")));
        assert!(!upstream_accepts(&req("/a<b")));
        assert!(upstream_accepts(&[]));
    }
}
