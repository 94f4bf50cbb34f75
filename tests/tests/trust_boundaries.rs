//! What the filters trust, in a real Envoy: the source address (never a client's
//! `X-Forwarded-For` unless hops are trusted), the path (one path however it is spelled, with
//! and without Envoy's own normalization) and JWT claims (only what `jwt_authn` verified).
//! Each test is a bypass that worked before the fix.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;
use envoy_harness::{modules, Client, EchoServer, Envoy, EnvoyConfig, FilterEntry, Response};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn wasm(name: &str, config: &Value) -> FilterEntry {
    FilterEntry::wasm(name, modules::module(name).unwrap(), config.to_string())
}

fn get(envoy: &Envoy, path: &str, headers: &[(&str, &str)]) -> Response {
    Client::new()
        .request("GET", &envoy.url(path), headers, b"")
        .unwrap()
}

/// Send `GET {target}` byte for byte (an HTTP library may clean up the path first) and return
/// the status and the upstream's `x-route-tag` (the echo server reports the headers it got).
fn raw_get(envoy: &Envoy, target: &str) -> (u16, Option<String>) {
    let mut s = TcpStream::connect(envoy.listener("http")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let tag = serde_json::from_str::<Value>(body).ok().and_then(|v| {
        v["headers"]
            .as_array()?
            .iter()
            .find(|h| h[0] == "x-route-tag")
            .and_then(|h| h[1].as_str().map(String::from))
    });
    (status, tag)
}

/// Policy: a per-source-IP bucket of 3 per 10 s on `/limited`; `/internal` only from 10/8.
fn xff_policy() -> Value {
    json!({"rules": [
        {"name": "limited", "match": {"paths": [{"prefix": "/limited"}]}, "action": "rate_limit",
         "rate_limit": {"max_tokens": 3, "fill_interval": "10s", "key": ["source_ip"]}},
        {"name": "internal", "match": {"paths": [{"prefix": "/internal"}], "source_cidrs": ["10.0.0.0/8"]},
         "action": "allow"},
        {"name": "internal-closed", "match": {"paths": [{"prefix": "/internal"}]}, "action": "deny"}
    ]})
}

/// Router: sources in 10/8 go to `internal`, everything else to `public`.
fn xff_router() -> Value {
    json!({"default_tag": "public", "rules": [
        {"name": "internal", "match": {"source_cidrs": ["10.0.0.0/8"]}, "tag": "internal"}]})
}

#[test]
fn rotating_x_forwarded_for_neither_refreshes_a_bucket_nor_satisfies_a_cidr_rule() {
    let echo = EchoServer::start("echo").unwrap();
    let envoy = Envoy::start(
        EnvoyConfig::new(echo.addr())
            .filter(wasm("policy", &xff_policy()))
            .filter(wasm("router", &xff_router())),
    )
    .unwrap();
    let mut statuses = Vec::new();
    for n in 1..=8 {
        let xff = format!("10.0.0.{n}");
        statuses.push(get(&envoy, "/limited", &[("x-forwarded-for", &xff)]).status);
    }
    eprintln!("8 requests to /limited, X-Forwarded-For 10.0.0.1..8: {statuses:?}");
    assert_eq!(
        statuses,
        [200, 200, 200, 429, 429, 429, 429, 429],
        "one client is one bucket, whatever X-Forwarded-For says"
    );
    for xff in ["10.0.0.1", "10.9.9.9, 10.0.0.1", "127.0.0.1, 10.0.0.1"] {
        let r = get(&envoy, "/internal", &[("x-forwarded-for", xff)]);
        assert_eq!(r.status, 403, "XFF {xff} must not satisfy a 10/8 rule");
        let r = get(&envoy, "/public", &[("x-forwarded-for", xff)]);
        assert_eq!(r.status, 200);
        assert_eq!(
            r.upstream_header("x-route-tag").as_deref(),
            Some("public"),
            "XFF {xff} must not satisfy the router's 10/8 rule"
        );
    }
    assert_eq!(envoy.stat("wasmcustom.policy_rule_limited_allowed"), 3);
    assert_eq!(envoy.stat("wasmcustom.policy_rule_limited_rate_limited"), 5);
    assert_eq!(envoy.stat("wasmcustom.policy_rule_internal_allowed"), 0);
    assert_eq!(envoy.stat("wasmcustom.router_routed_internal_total"), 0);
}

/// The control: with one trusted hop, the address that hop appended is believed, so the same
/// rules do see 10.0.0.7 (the test above therefore measures trust, not a rule that never
/// matches).
#[test]
fn one_trusted_hop_is_believed_when_configured() {
    let echo = EchoServer::start("echo").unwrap();
    let envoy = Envoy::start(
        EnvoyConfig::new(echo.addr())
            .xff_num_trusted_hops(1)
            .filter(wasm("policy", &xff_policy()))
            .filter(wasm("router", &xff_router())),
    )
    .unwrap();
    let r = get(&envoy, "/internal", &[("x-forwarded-for", "10.0.0.7")]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.upstream_header("x-route-tag").as_deref(),
        Some("internal")
    );
    // Only the last (trusted) hop counts: a client-written first entry is still ignored.
    let r = get(
        &envoy,
        "/internal",
        &[("x-forwarded-for", "10.0.0.7, 192.0.2.1")],
    );
    assert_eq!(r.status, 403);
}

/// Spellings of `/admin` (and of `/beta` for the router) that Envoy forwards unchanged unless
/// it normalizes.
const ADMIN_VARIANTS: [&str; 5] = ["/admin", "//admin", "/./admin", "/%61dmin", "/x/../admin"];

fn path_chain(config: EnvoyConfig) -> Envoy {
    let policy = json!({"rules": [
        {"name": "admin-closed", "match": {"paths": [{"prefix": "/admin"}]}, "action": "deny"}]});
    let router = json!({"default_tag": "stable", "rules": [
        {"name": "beta", "match": {"paths": [{"prefix": "/beta"}]}, "tag": "beta"}]});
    Envoy::start(
        config
            .filter(wasm("policy", &policy))
            .filter(wasm("router", &router)),
    )
    .unwrap()
}

fn assert_variants_denied(envoy: &Envoy, which: &str) {
    let mut policy = Vec::new();
    let mut router = Vec::new();
    for p in ADMIN_VARIANTS {
        policy.push((p, raw_get(envoy, p).0));
        let beta = p.replace("admin", "beta").replace("%61dmin", "%62eta");
        let (status, tag) = raw_get(envoy, &beta);
        router.push((beta, status, tag.unwrap_or_default()));
    }
    eprintln!("{which}: policy {policy:?}");
    eprintln!("{which}: router {router:?}");
    assert!(
        policy.iter().all(|(_, s)| *s == 403),
        "{which}: every spelling of /admin is denied: {policy:?}"
    );
    assert!(
        router.iter().all(|(_, s, t)| *s == 200 && t == "beta"),
        "{which}: every spelling of /beta is routed to beta: {router:?}"
    );
    assert_eq!(raw_get(envoy, "/public").0, 200);
    assert_eq!(raw_get(envoy, "/admin/../public").0, 200);
}

#[test]
fn path_spellings_are_denied_like_admin_with_envoy_normalizing() {
    let echo = EchoServer::start("echo").unwrap();
    let envoy = path_chain(EnvoyConfig::new(echo.addr()));
    assert_variants_denied(&envoy, "normalizing Envoy");
}

/// The same with Envoy's normalization off: only the filters' own normalization stands
/// between `//admin` and the upstream.
#[test]
fn path_spellings_are_denied_like_admin_without_envoy_normalization() {
    let echo = EchoServer::start("echo").unwrap();
    let envoy = path_chain(EnvoyConfig::new(echo.addr()).raw_paths());
    assert_variants_denied(&envoy, "Envoy without normalization");
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// An ES256 key generated for this test run.
struct Signer {
    key: ring::signature::EcdsaKeyPair,
    rng: ring::rand::SystemRandom,
}

impl Signer {
    fn generate() -> Self {
        use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING as ALG};
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ALG, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ALG, pkcs8.as_ref(), &rng).unwrap();
        Self { key, rng }
    }

    /// The public key as a JWKS with `kid` `k1`.
    fn jwks(&self) -> String {
        use ring::signature::KeyPair;
        let point = self.key.public_key().as_ref(); // 0x04 || x || y
        json!({"keys": [{"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": "k1",
                         "x": b64(&point[1..33]), "y": b64(&point[33..65])}]})
        .to_string()
    }

    fn token(&self, claims: &Value) -> String {
        let header = b64(json!({"alg": "ES256", "typ": "JWT", "kid": "k1"})
            .to_string()
            .as_bytes());
        let input = format!("{header}.{}", b64(claims.to_string().as_bytes()));
        let sig = self.key.sign(&self.rng, input.as_bytes()).unwrap();
        format!("{input}.{}", b64(sig.as_ref()))
    }
}

fn claims(sub: &str) -> Value {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    json!({"iss": "https://idp.test", "aud": "api", "sub": sub, "scope": "read admin", "exp": exp})
}

/// `jwt_authn` with the test's JWKS; a failed or missing token is let through (without
/// metadata), so the policy's own claim rules are what decides.
fn jwt_authn(jwks: &str) -> FilterEntry {
    FilterEntry::native(
        "envoy.filters.http.jwt_authn",
        json!({
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {"idp": {
                "issuer": "https://idp.test",
                "audiences": ["api"],
                "local_jwks": {"inline_string": jwks},
                "payload_in_metadata": "payload",
                "forward": true
            }},
            "rules": [{"match": {"prefix": "/"}, "requires": {"requires_any": {"requirements": [
                {"provider_name": "idp"}, {"allow_missing_or_failed": {}}]}}}]
        }),
    )
}

fn claims_policy(jwt: Value) -> Value {
    json!({"default_action": "deny", "jwt": jwt, "rules": [
        {"name": "admins", "match": {"paths": [{"prefix": "/"}], "claims": [
            {"claim": "sub", "value": {"exact": "alice"}},
            {"claim": "scope", "value": {"exact": "admin"}}]}, "action": "allow"}]})
}

#[test]
fn only_claims_jwt_authn_verified_match() {
    let idp = Signer::generate();
    let attacker = Signer::generate();
    let echo = EchoServer::start("echo").unwrap();
    let envoy = Envoy::start(
        EnvoyConfig::new(echo.addr())
            .filter(jwt_authn(&idp.jwks()))
            .filter(wasm("policy", &claims_policy(json!({})))),
    )
    .unwrap();
    let bearer = |t: &str| format!("Bearer {t}");
    let alice = claims("alice");
    let unsigned = unsigned_token(&alice);
    let payload = b64(alice.to_string().as_bytes());
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, u16);
    let cases: Vec<Case> = vec![
        (
            "valid token",
            vec![("authorization", bearer(&idp.token(&alice)))],
            200,
        ),
        (
            "valid token, other subject",
            vec![("authorization", bearer(&idp.token(&claims("bob"))))],
            403,
        ),
        (
            "forged signature",
            vec![("authorization", bearer(&attacker.token(&alice)))],
            403,
        ),
        (
            "unsigned (alg none)",
            vec![("authorization", bearer(&unsigned))],
            403,
        ),
        ("no token", vec![], 403),
        (
            "payload header, no token",
            vec![("x-jwt-payload", payload.clone())],
            403,
        ),
        (
            "compact JWT in a header",
            vec![("x-jwt-payload", attacker.token(&alice))],
            403,
        ),
    ];
    for (what, headers, want) in &cases {
        let h: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let r = get(&envoy, "/x", &h);
        eprintln!("metadata source: {what}: {}", r.status);
        assert_eq!(r.status, *want, "{what}: {}", r.body);
    }
    assert_eq!(envoy.stat("wasmcustom.policy_rule_admins_allowed"), 1);
}

/// Opt-in header source: the payload form is read, a compact JWT (verified by nobody) never.
#[test]
fn payload_header_opt_in_refuses_compact_jwts() {
    let attacker = Signer::generate();
    let alice = claims("alice");
    let unsigned = unsigned_token(&alice);
    let payload = b64(alice.to_string().as_bytes());
    let echo = EchoServer::start("echo").unwrap();
    let envoy = Envoy::start(EnvoyConfig::new(echo.addr()).filter(wasm(
        "policy",
        &claims_policy(json!({"payload_header": "x-jwt-payload"})),
    )))
    .unwrap();
    for (what, value, want) in [
        ("payload form", payload.clone(), 200),
        ("forged compact JWT", attacker.token(&alice), 403),
        ("unsigned compact JWT", unsigned.clone(), 403),
    ] {
        let r = get(&envoy, "/x", &[("x-jwt-payload", &value)]);
        eprintln!("header source: {what}: {}", r.status);
        assert_eq!(r.status, want, "header source, {what}: {}", r.body);
    }
}

/// A compact JWT with `alg: none` and no signature: what a client can forge without any key.
fn unsigned_token(claims: &serde_json::Value) -> String {
    format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(claims.to_string().as_bytes())
    )
}
