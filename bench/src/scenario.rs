//! The scenario registry: every configuration `cargo xtask bench` measures, in run order.
//!
//! **Adding a scenario** is one entry in [`all`]: a name, what it shows, the filter modules it
//! needs (a scenario whose module is not in this checkout is reported as missing, not failed) and
//! a function building its HTTP filter chain. Wasm filters take their configuration from
//! `bench/configs/<filter>.json` (the representative benchmark config), else the filter's own
//! `filters/<filter>/config.json`, else `{}`.

use crate::native;
use anyhow::{Context, Result};
use envoy_harness::FilterEntry;
use serde::Serialize;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// What a scenario runs, for colouring and grouping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// No filter at all.
    Baseline,
    /// One or more of our Wasm modules.
    Wasm,
    /// Envoy's own filters, for comparison.
    Native,
    /// Not Envoy: nginx alone or nginx + ModSecurity + CRS, the anchor ([`anchors`]). Its
    /// ratios are to `nginx` (nginx alone), not to Envoy's baseline.
    Nginx,
}

/// One measured configuration.
pub struct Scenario {
    pub name: &'static str,
    pub kind: Kind,
    /// One line: what it runs and why it is here.
    pub description: &'static str,
    /// Filter crates (modules) it needs; absent ones make it "missing".
    pub needs: &'static [&'static str],
    /// The HTTP filters before the router (the buffer filter and router are added for all).
    pub chain: fn(&Inputs) -> Result<Vec<FilterEntry>>,
}

/// Where modules and configurations come from.
pub struct Inputs {
    /// Built modules, `NAME.wasm` (from `cargo xtask build`).
    pub modules_dir: PathBuf,
    /// The workspace root.
    pub root: PathBuf,
}

impl Inputs {
    pub fn module(&self, name: &str) -> PathBuf {
        self.modules_dir.join(format!("{name}.wasm"))
    }

    /// The benchmark configuration of filter `name` (JSON text).
    pub fn config(&self, name: &str) -> Result<String> {
        for p in [
            self.root.join("bench/configs").join(format!("{name}.json")),
            self.root.join("filters").join(name).join("config.json"),
        ] {
            if p.is_file() {
                return std::fs::read_to_string(&p)
                    .with_context(|| format!("reading {}", p.display()));
            }
        }
        Ok("{}".into())
    }

    /// Filter `name` as a Wasm filter with its benchmark configuration.
    pub fn wasm(&self, name: &str) -> Result<FilterEntry> {
        Ok(FilterEntry::wasm(
            name,
            self.module(name),
            self.config(name)?,
        ))
    }

    /// A second (third, ...) instance of module `name`, under its own filter name and VM.
    pub fn wasm_as(&self, name: &str, instance: &str) -> Result<FilterEntry> {
        Ok(FilterEntry::wasm(
            instance,
            self.module(name),
            self.config(name)?,
        ))
    }

    /// Why `scenario` cannot run here, if it cannot.
    pub fn missing(&self, scenario: &Scenario) -> Option<String> {
        let absent: Vec<&str> = scenario
            .needs
            .iter()
            .copied()
            .filter(|n| !self.module(n).is_file())
            .collect();
        (!absent.is_empty()).then(|| {
            format!(
                "module(s) {} not built (no filters/{} in this checkout?)",
                absent.join(", "),
                absent[0]
            )
        })
    }
}

fn native(name: &str, config: Value) -> FilterEntry {
    FilterEntry::native(name, config)
}

/// The filters `chain` runs as separate Wasm filters and `suite` composes in one module, in
/// the same order (the suite's order, see `filters/suite/README.md`): cheap policy denials
/// first, then the expensive threat scoring, then routing of what is forwarded.
pub const SUITE_MEMBERS: &[&str] = &["policy", "threat-score", "router"];

/// The suite's combined configuration: each member's benchmark configuration under its key
/// (`threat-score` -> `threat_score`).
pub fn suite_config(inputs: &Inputs) -> Result<String> {
    let mut doc = serde_json::Map::new();
    for name in SUITE_MEMBERS {
        let part: Value = serde_json::from_str(&inputs.config(name)?)
            .with_context(|| format!("{name} config"))?;
        doc.insert(name.replace('-', "_"), part);
    }
    Ok(Value::Object(doc).to_string())
}

/// The `chain` scenario's filters: [`SUITE_MEMBERS`] as separate Wasm filters.
fn chain(inputs: &Inputs) -> Result<Vec<FilterEntry>> {
    SUITE_MEMBERS.iter().map(|m| inputs.wasm(m)).collect()
}

/// Scenarios that run only when named (`cargo xtask bench NAME`): measurement builds made by
/// hand (bench/README.md, "What threat-score pays outside the engine"), absent from a normal
/// run rather than listed as missing.
pub const ON_REQUEST: &[&str] = &[
    "threat-score-engine-off",
    "suite-engine-off",
    "probe-0",
    "probe-metric",
    "probe-clock",
    "probe-shared-get",
    "probe-shared-set",
    "probe-property",
    "probe-request-header",
    "probe-response-header",
    "probe-body",
];

/// Host calls of one kind each probe scenario makes per request (bench/README.md, "Host calls:
/// what each costs in Envoy"): enough for the calls' CPU to stand well above the noise of one
/// no-op floor.
pub const PROBE_CALLS: u32 = 20;

/// The host-call probe (`filters/noop` built with feature `bench-host-calls`, module
/// `noop-probe.wasm`) making `count` calls of `kind` per request.
fn probe(inputs: &Inputs, kind: &str, count: u32) -> Result<Vec<FilterEntry>> {
    Ok(vec![FilterEntry::wasm(
        "noop-probe",
        inputs.module("noop-probe"),
        json!({"kind": kind, "count": count}).to_string(),
    )])
}

/// The probe scenarios: `probe-0` (the probe module making no call) and one per kind.
fn probes() -> Vec<Scenario> {
    macro_rules! probe {
        ($name:literal, $kind:literal, $count:expr, $what:literal) => {
            Scenario {
                name: $name,
                kind: Kind::Wasm,
                description: $what,
                needs: &["noop-probe"],
                chain: |i| probe(i, $kind, $count),
            }
        };
    }
    vec![
        probe!("probe-0", "metric", 0, "the host-call probe making no call (its floor)"),
        probe!("probe-metric", "metric", PROBE_CALLS, "the probe: 20 proxy_increment_metric per request"),
        probe!("probe-clock", "clock", PROBE_CALLS, "the probe: 20 proxy_get_current_time_nanoseconds per request"),
        probe!("probe-shared-get", "shared_get", PROBE_CALLS, "the probe: 20 proxy_get_shared_data per request"),
        probe!("probe-shared-set", "shared_set", PROBE_CALLS, "the probe: 20 proxy_set_shared_data per request"),
        probe!("probe-property", "property", PROBE_CALLS, "the probe: 20 proxy_get_property (request.protocol) per request"),
        probe!("probe-request-header", "request_header", PROBE_CALLS, "the probe: 20 proxy_replace_header_map_value on the request headers (each clears the route cache)"),
        probe!("probe-response-header", "response_header", PROBE_CALLS, "the probe: 20 proxy_replace_header_map_value on the response headers"),
        probe!("probe-body", "body", 0, "the probe: each request body buffered and read once (8 of the 40 requests)"),
    ]
}

/// Every scenario, in the order each round runs them.
pub fn all() -> Vec<Scenario> {
    let mut all = vec![
        Scenario {
            name: "baseline",
            kind: Kind::Baseline,
            description: "no filter: Envoy's own cost (HCM, buffer, router, direct response)",
            needs: &[],
            chain: |_| Ok(vec![]),
        },
        Scenario {
            name: "noop-wasm",
            kind: Kind::Wasm,
            description: "filters/noop: a Wasm filter that does nothing (the per-filter floor)",
            needs: &["noop"],
            chain: |i| Ok(vec![i.wasm("noop")?]),
        },
        Scenario {
            name: "noop-wasm-x3",
            kind: Kind::Wasm,
            description: "three separate no-op Wasm filters: the floor paid three times",
            needs: &["noop"],
            chain: |i| {
                Ok(vec![
                    i.wasm_as("noop", "noop-1")?,
                    i.wasm_as("noop", "noop-2")?,
                    i.wasm_as("noop", "noop-3")?,
                ])
            },
        },
        Scenario {
            name: "example",
            kind: Kind::Wasm,
            description: "filters/example: one header matcher, one response header, a counter",
            needs: &["example"],
            chain: |i| Ok(vec![i.wasm("example")?]),
        },
        Scenario {
            name: "policy",
            kind: Kind::Wasm,
            description:
                "filters/policy: 50 rules and a local rate limit (bench/configs/policy.json)",
            needs: &["policy"],
            chain: |i| Ok(vec![i.wasm("policy")?]),
        },
        Scenario {
            name: "rbac+ratelimit-native",
            kind: Kind::Native,
            description:
                "native counterpart of policy: RBAC with 50 DENY policies + local_ratelimit",
            needs: &[],
            chain: |_| {
                Ok(vec![
                    native("envoy.filters.http.rbac", native::rbac()),
                    native(
                        "envoy.filters.http.local_ratelimit",
                        native::local_ratelimit(),
                    ),
                ])
            },
        },
        Scenario {
            name: "policy-global",
            kind: Kind::Wasm,
            description: "policy with its rate limit global: a gRPC callout per request to the rate-limit service (Redis), a limit that admits everything; routed through a local hop (see rate_limited_virtual_hosts)",
            needs: &["policy"],
            chain: |i| {
                Ok(vec![FilterEntry::wasm(
                    "policy",
                    i.module("policy"),
                    global_policy_config(i)?,
                )])
            },
        },
        Scenario {
            name: "rbac+ratelimit-global-native",
            kind: Kind::Native,
            description: "native counterpart of policy-global: RBAC + envoy.filters.http.ratelimit, same descriptor, same service",
            needs: &[],
            chain: |_| {
                Ok(vec![
                    native("envoy.filters.http.rbac", native::rbac()),
                    native("envoy.filters.http.ratelimit", native::global_ratelimit()),
                ])
            },
        },
        Scenario {
            name: "rbac-native",
            kind: Kind::Native,
            description: "envoy.filters.http.rbac with 50 DENY policies",
            needs: &[],
            chain: |_| Ok(vec![native("envoy.filters.http.rbac", native::rbac())]),
        },
        Scenario {
            name: "local-ratelimit-native",
            kind: Kind::Native,
            description: "envoy.filters.http.local_ratelimit, a bucket that never runs dry",
            needs: &[],
            chain: |_| {
                Ok(vec![native(
                    "envoy.filters.http.local_ratelimit",
                    native::local_ratelimit(),
                )])
            },
        },
        Scenario {
            name: "router",
            kind: Kind::Wasm,
            description: "filters/router: 10% sticky split (bench/configs/router.json)",
            needs: &["router"],
            chain: |i| Ok(vec![i.wasm("router")?]),
        },
        Scenario {
            name: "threat-score",
            kind: Kind::Wasm,
            description:
                "filters/threat-score at PL1, bodies inspected (bench/configs/threat-score.json)",
            needs: &["threat-score"],
            chain: |i| Ok(vec![i.wasm("threat-score")?]),
        },
        Scenario {
            name: "threat-score-engine-off",
            kind: Kind::Wasm,
            description: "threat-score's glue with the engine never called (a `bench-engine-off` build, threat-score's config): what it pays outside the engine",
            needs: &["threat-score-engine-off"],
            chain: |i| {
                Ok(vec![FilterEntry::wasm(
                    "threat-score-engine-off",
                    i.module("threat-score-engine-off"),
                    i.config("threat-score")?,
                )])
            },
        },
        Scenario {
            name: "lua-native",
            kind: Kind::Native,
            description:
                "native counterpart of threat-score: Lua, 20 patterns over path, user agent, body",
            needs: &[],
            chain: |_| Ok(vec![native("envoy.filters.http.lua", native::lua())]),
        },
        Scenario {
            name: "chain",
            kind: Kind::Wasm,
            description: "the suite's members (policy, threat-score, router) as separate Wasm filters, in the suite's order",
            needs: SUITE_MEMBERS,
            chain,
        },
        Scenario {
            name: "suite",
            kind: Kind::Wasm,
            description:
                "filters/suite: the same filters and configs in one module, one VM crossing per callback",
            needs: &["suite"],
            chain: |i| {
                Ok(vec![FilterEntry::wasm(
                    "suite",
                    i.module("suite"),
                    suite_config(i)?,
                )])
            },
        },
        Scenario {
            name: "suite-engine-off",
            kind: Kind::Wasm,
            description: "the suite with threat-score's engine never called (a `bench-engine-off` build, the suite's config): policy, router and every glue cost",
            needs: &["suite-engine-off"],
            chain: |i| {
                Ok(vec![FilterEntry::wasm(
                    "suite-engine-off",
                    i.module("suite-engine-off"),
                    suite_config(i)?,
                )])
            },
        },
    ];
    all.extend(probes());
    all
}

/// One anchor scenario: Debian's nginx, one process pinned like Envoy, answering 200 from the
/// echo module after reading the body (`envoy_harness::nginx`), driven by the same mix.
pub struct NginxScenario {
    pub name: &'static str,
    pub description: &'static str,
    /// `Some(level)`: ModSecurity + CRS at that paranoia level; `None`: nginx alone.
    pub crs_paranoia: Option<u8>,
}

/// The anchor scenarios, run after [`all`] in each round. `nginx` is the server's own cost,
/// what `modsecurity-crs` is compared with (as `baseline` is for Envoy's scenarios); it runs
/// whenever `modsecurity-crs` does.
pub fn anchors() -> Vec<NginxScenario> {
    vec![
        NginxScenario {
            name: "nginx",
            description: "nginx alone (modsecurity off): echo after reading the body; the anchor's server cost",
            crs_paranoia: None,
        },
        NginxScenario {
            name: "modsecurity-crs",
            description: "nginx + ModSecurity 3 + OWASP CRS (Debian, CRS 3.3.4) at PL1, PUT/PATCH/DELETE allowed: the anchor",
            crs_paranoia: Some(1),
        },
    ]
}

/// The route every scenario serves: a direct response, so Envoy's CPU per request is not
/// diluted by an upstream connection (and no upstream process competes for the CPUs).
pub fn virtual_hosts() -> Value {
    every_path(
        "direct_response",
        json!({"status": 200, "body": {"inline_string": "{\"ok\":true}\n"}}),
    )
}

/// Virtual host `bench` (any domain) with route `bench` for every path, whose action is
/// `action` (`direct_response`, `route`) = `value`.
fn every_path(action: &str, value: Value) -> Value {
    json!([{
        "name": "bench",
        "domains": ["*"],
        "routes": [{"name": "bench", "match": {"prefix": "/"}, (action): value}]
    }])
}

/// Scenarios that call the rate-limit service: the harness starts Redis and the service
/// (`envoy_harness::ratelimit`) once per run for them, adds its cluster `ratelimit` and serves
/// [`rate_limited_virtual_hosts`].
pub const USES_RATELIMIT_SERVICE: &[&str] = &["policy-global", "rbac+ratelimit-global-native"];

/// The service's limits for those scenarios (envoyproxy/ratelimit's format): per user, far more
/// than the benchmark sends, so every request is counted in Redis and admitted.
pub fn ratelimit_limits() -> Value {
    json!({"domain": "bench", "descriptors": [{"key": "generic_key", "value": "bench", "descriptors": [
        {"key": "x-user-id", "rate_limit": {"unit": "second", "requests_per_unit": 1_000_000_000u64}}]}]})
}

/// The benchmark policy with its rate-limit rule (`per-user`) made global: the same descriptor
/// as the native anchor's route actions, [generic_key=bench, x-user-id=<user>].
pub fn global_policy_config(inputs: &Inputs) -> Result<String> {
    let mut cfg: Value = serde_json::from_str(&inputs.config("policy")?)?;
    let rules = cfg["rules"]
        .as_array_mut()
        .context("policy config: no rules")?;
    let rule = rules
        .iter_mut()
        .find(|r| r["action"] == "rate_limit")
        .context("policy config: no rate_limit rule")?;
    rule["rate_limit"] = json!({
        "scope": "global",
        "key": [{"header": "x-user-id"}],
        "global": {"cluster": "ratelimit", "domain": "bench", "timeout": "1s",
                   "entries": [{"key": "generic_key", "value": "bench"}]}
    });
    Ok(cfg.to_string())
}

/// The route of the scenarios that call the rate-limit service: to cluster `loop` (a second
/// listener of the same Envoy answering with [`virtual_hosts`]'s direct response,
/// [`loop_listener`]), with the descriptor's actions for `envoy.filters.http.ratelimit`. Envoy's
/// rate-limit filter asks the service only on routes with a cluster, so both scenarios pay
/// this extra local hop: compare them with each other, not with `baseline`.
pub fn rate_limited_virtual_hosts() -> Value {
    every_path(
        "route",
        json!({"cluster": "loop", "timeout": "5s", "rate_limits": [{"actions": [
            {"generic_key": {"descriptor_value": "bench"}},
            {"request_headers": {"header_name": "x-user-id", "descriptor_key": "x-user-id"}}
        ]}]}),
    )
}

/// The listener behind cluster `loop` on `port`: the direct response, no filters.
pub fn loop_listener(port: u16) -> Value {
    json!({
        "name": "loop",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": "loop",
                "route_config": {"name": "loop", "virtual_hosts": virtual_hosts()},
                "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]
            }
        }]}]
    })
}

/// The full HTTP filter list for a scenario: its chain, then the buffer filter (see
/// [`native::buffer`]); the harness appends the router.
pub fn http_filters(s: &Scenario, inputs: &Inputs) -> Result<Vec<FilterEntry>> {
    let mut filters = (s.chain)(inputs)?;
    filters.push(native("envoy.filters.http.buffer", native::buffer()));
    Ok(filters)
}

/// Module names every registered scenario may need, for building.
pub fn needed_modules() -> Vec<&'static str> {
    let mut v: Vec<&str> = all().iter().flat_map(|s| s.needs.iter().copied()).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Whether `dir` holds module `name`.
pub fn has_module(dir: &Path, name: &str) -> bool {
    dir.join(format!("{name}.wasm")).is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_baseline_and_noop_come_first() {
        let all = all();
        let mut names: Vec<&str> = all.iter().map(|s| s.name).collect();
        assert_eq!(&names[..2], &["baseline", "noop-wasm"]);
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
    }

    #[test]
    fn scenarios_without_modules_are_reported_missing() {
        let inputs = Inputs {
            modules_dir: PathBuf::from("/nonexistent"),
            root: PathBuf::from("/nonexistent"),
        };
        let all = all();
        let suite = all.iter().find(|s| s.name == "suite").unwrap();
        assert!(inputs.missing(suite).unwrap().contains("suite"));
        assert!(inputs.missing(&all[0]).is_none());
    }
}
