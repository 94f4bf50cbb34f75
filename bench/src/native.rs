//! Envoy's native filters configured to do work comparable to ours, in the same Envoy, on the
//! same traffic: `envoy.filters.http.rbac` for policy rules, `envoy.filters.http.local_ratelimit`
//! for the rate limit, and a Lua filter (`envoy.filters.http.lua`) doing header, query and body
//! pattern checks like a PL1 threat score.

use serde_json::{json, Value};

/// How many rules the policy scenarios evaluate.
pub const POLICY_RULES: usize = 50;

/// 50 DENY policies; none matches the benign part of the workload, so an allowed request walks
/// all of them (the worst case for a first-match engine). Rule `i` denies any method on
/// `/internal/svc-i/`, or requests carrying `x-blocked-client: client-i`, or, for rules that are
/// multiples of 5, `DELETE` on `/api/orders/i`.
pub fn rbac() -> Value {
    let mut policies = serde_json::Map::new();
    for i in 0..POLICY_RULES {
        let mut permissions = vec![
            json!({"url_path": {"path": {"prefix": format!("/internal/svc-{i}/")}}}),
            json!({"header": {"name": "x-blocked-client", "string_match": {"exact": format!("client-{i}")}}}),
        ];
        if i % 5 == 0 {
            permissions.push(json!({"and_rules": {"rules": [
                {"header": {"name": ":method", "string_match": {"exact": "DELETE"}}},
                {"url_path": {"path": {"prefix": format!("/api/orders/{i}")}}}
            ]}}));
        }
        policies.insert(
            format!("rule-{i:02}"),
            json!({"permissions": [{"or_rules": {"rules": permissions}}], "principals": [{"any": true}]}),
        );
    }
    json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
        "rules": {"action": "DENY", "policies": policies}
    })
}

/// A token bucket large enough never to run dry under the benchmark (the cost measured is the
/// bucket check, not the 429s), enabled and enforced for every request.
pub fn local_ratelimit() -> Value {
    json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
        "stat_prefix": "bench_rl",
        "token_bucket": {"max_tokens": 1_000_000_000u64, "tokens_per_fill": 1_000_000_000u64, "fill_interval": "1s"},
        "filter_enabled": {"runtime_key": "bench_rl_enabled", "default_value": {"numerator": 100, "denominator": "HUNDRED"}},
        "filter_enforced": {"runtime_key": "bench_rl_enforced", "default_value": {"numerator": 100, "denominator": "HUNDRED"}}
    })
}

/// A Lua filter that lower-cases the path (query included), user agent and, for requests with
/// a body, the body, and scores them against 20 attack patterns (SQL injection, XSS, traversal,
/// command injection); a score of 5 or more is answered with 403, like an anomaly threshold.
pub fn lua() -> Value {
    json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
        "default_source_code": {"inline_string": LUA_THREAT}
    })
}

const LUA_THREAT: &str = r#"
local patterns = {
  "union%s+select", "select%s.+%sfrom", "insert%s+into", "drop%s+table", "or%s+1%s*=%s*1",
  "information_schema", "sleep%s*%(", "benchmark%s*%(", "<script", "javascript:",
  "onerror%s*=", "onload%s*=", "%.%./", "/etc/passwd", "cmd%.exe", ";%s*cat%s",
  "%$%(", "base64_decode", "eval%s*%(", "%%00"
}
local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end
local function score(s)
  local n = 0
  s = unescape(s):lower()
  for _, p in ipairs(patterns) do
    if s:find(p) then n = n + 5 end
  end
  return n
end
function envoy_on_request(handle)
  local h = handle:headers()
  local total = score(h:get(":path") or "") + score(h:get("user-agent") or "")
  local len = tonumber(h:get("content-length") or "0") or 0
  if len > 0 then
    local body = handle:body()
    if body then
      total = total + score(body:getBytes(0, math.min(body:length(), 8192)))
    end
  end
  if total >= 5 then
    handle:respond({[":status"] = "403", ["content-type"] = "application/json"},
      '{"error":"forbidden","message":"request blocked"}')
  end
end
"#;

/// Buffers the request body before the router, in every scenario. With a `direct_response`
/// route the router answers at the request headers; for a request with a body that is still
/// arriving, Envoy then closes the HTTP/1.1 connection (measured: one connection per POST), which
/// would turn keep-alive into connection churn. Buffering first keeps every connection alive.
pub fn buffer() -> Value {
    json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer",
        "max_request_bytes": 65536
    })
}

/// Envoy's global rate-limit filter asking the benchmark's rate-limit service (cluster
/// `ratelimit`) with the route's descriptor ([`crate::scenario::rate_limited_virtual_hosts`]):
/// the native anchor of `policy-global`. Same timeout and failure mode as the policy rule.
pub fn global_ratelimit() -> Value {
    json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit",
        "domain": "bench",
        "timeout": "1s",
        "failure_mode_deny": false,
        "rate_limit_service": {
            "grpc_service": {"envoy_grpc": {"cluster_name": "ratelimit"}},
            "transport_api_version": "V3"
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rbac_has_fifty_deny_policies() {
        let v = rbac();
        assert_eq!(v["rules"]["action"], "DENY");
        assert_eq!(
            v["rules"]["policies"].as_object().unwrap().len(),
            POLICY_RULES
        );
    }
}
