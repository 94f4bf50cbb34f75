//! Table-driven tests for the matchers.

use super::*;
use crate::testing::RequestBuilder;

fn sm(json: &str) -> StringMatcher {
    crate::config::from_str::<StringMatchSpec>(json)
        .unwrap()
        .compile()
        .unwrap()
}

#[test]
fn string_match_kinds() {
    let cases: &[(&str, &str, bool)] = &[
        (r#"{"exact":"/a"}"#, "/a", true),
        (r#"{"exact":"/a"}"#, "/a/", false),
        (r#"{"exact":"/A","ignore_case":true}"#, "/a", true),
        (r#"{"prefix":"/api/"}"#, "/api/v1", true),
        (r#"{"prefix":"/api/"}"#, "/ap", false),
        (r#"{"prefix":"/API/","ignore_case":true}"#, "/api/x", true),
        (r#"{"prefix":"/é"}"#, "/e", false),
        (r#"{"suffix":".php"}"#, "/x.php", true),
        (r#"{"contains":"admin"}"#, "/x/admin/y", true),
        (r#"{"regex":"/users/[0-9]+"}"#, "/users/42", true),
        (r#"{"regex":"/users/[0-9]+"}"#, "/users/42/x", false),
        (r#"{"regex":"[0-9]+"}"#, "a1", false),
        (r#"{"glob":"/static/*"}"#, "/static/a.css", true),
        (r#"{"glob":"/static/*"}"#, "/static/a/b.css", false),
        (r#"{"glob":"/static/**"}"#, "/static/a/b.css", true),
        (r#"{"glob":"/v?/items"}"#, "/v2/items", true),
        (
            r#"{"glob":"*.example.com","ignore_case":true}"#,
            "API.example.com",
            true,
        ),
    ];
    for (spec, value, want) in cases {
        assert_eq!(sm(spec).matches(value), *want, "{spec} vs {value}");
    }
}

#[test]
fn string_match_spec_errors_name_the_field() {
    let none = StringMatchSpec::default().compile().unwrap_err();
    assert!(none.reason.contains("exactly one of"), "{none}");
    let two = StringMatchSpec {
        exact: Some("a".into()),
        prefix: Some("b".into()),
        ..Default::default()
    };
    assert!(two.compile().unwrap_err().reason.contains("exact, prefix"));
    let re = StringMatchSpec::regex("(").compile().unwrap_err();
    assert_eq!(re.path, "regex");
    assert!(re.reason.contains("invalid regex"));
    let gl = StringMatchSpec::glob("[").compile().unwrap_err();
    assert_eq!(gl.path, "glob");
}

#[test]
fn oversized_regex_is_refused() {
    let err = StringMatchSpec::regex("(a{1000}){1000}")
        .compile()
        .unwrap_err();
    assert_eq!(err.path, "regex");
}

/// regex-lite semantics (README, "Matcher semantics"): Perl classes and case folding are ASCII,
/// Unicode classes are refused at configure time, `.` is one Unicode scalar value.
#[test]
fn regexes_are_ascii_classed_and_refuse_unicode_classes() {
    let m = |re: &str| StringMatchSpec::regex(re).compile().unwrap();
    assert!(m(r"\d+").matches("2024"));
    assert!(
        !m(r"\d+").matches("\u{663}\u{664}"),
        "Arabic-Indic digits are not \\d"
    );
    assert!(!m(r"\w+").matches("caf\u{e9}"));
    assert!(
        m(r"caf.").matches("caf\u{e9}"),
        ". is one scalar value, not one byte"
    );
    let err = StringMatchSpec::regex(r"\p{L}+").compile().unwrap_err();
    assert_eq!(err.path, "regex");
    assert!(err.reason.contains("invalid regex"), "{}", err.reason);
    let ci = StringMatchSpec {
        regex: Some("/API/v[0-9]".into()),
        ignore_case: true,
        ..Default::default()
    };
    assert!(ci.compile().unwrap().matches("/api/V1"));
}

#[test]
fn header_matchers() {
    let req = RequestBuilder::get("/")
        .header("x-user", "alice")
        .header("x-user", "bob")
        .build();
    let hm = |json: &str| {
        crate::config::from_str::<HeaderMatchSpec>(json)
            .unwrap()
            .compile()
            .unwrap()
            .matches(&req)
    };
    assert!(hm(r#"{"name":"X-User"}"#));
    assert!(!hm(r#"{"name":"x-none"}"#));
    assert!(hm(r#"{"name":"x-none","invert":true}"#));
    assert!(
        hm(r#"{"name":"x-user","value":{"exact":"bob"}}"#),
        "any value matches"
    );
    assert!(hm(r#"{"name":"x-user","value":{"prefix":"al"}}"#));
    assert!(!hm(r#"{"name":"x-user","value":{"regex":"c.*"}}"#));
    assert!(hm(
        r#"{"name":"x-user","value":{"regex":"c.*"},"invert":true}"#
    ));
}

#[test]
fn header_spec_errors() {
    let bad = HeaderMatchSpec {
        name: "bad name".into(),
        value: None,
        invert: false,
    };
    assert_eq!(bad.compile().unwrap_err().path, "name");
    let bad_re = HeaderMatchSpec {
        name: "x".into(),
        value: Some(StringMatchSpec::regex("[")),
        invert: false,
    };
    assert_eq!(bad_re.compile().unwrap_err().path, "value.regex");
    assert!(crate::config::from_str::<HeaderMatchSpec>(r#"{"name":"x","exact":"y"}"#).is_err());
}

#[test]
fn query_matchers() {
    let req = RequestBuilder::get("/p?debug=1&tag=a%20b&tag=c").build();
    let qm = |json: &str| {
        crate::config::from_str::<QueryMatchSpec>(json)
            .unwrap()
            .compile()
            .unwrap()
            .matches(&req)
    };
    assert!(qm(r#"{"name":"debug"}"#));
    assert!(qm(r#"{"name":"tag","value":{"exact":"a b"}}"#));
    assert!(qm(r#"{"name":"tag","value":{"exact":"c"}}"#));
    assert!(!qm(r#"{"name":"nope"}"#));
    assert!(qm(r#"{"name":"nope","invert":true}"#));
}

#[test]
fn methods() {
    let m = MethodMatcher::compile(&["get".into(), "POST".into()]).unwrap();
    assert!(m.matches("GET") && m.matches("POST") && !m.matches("PUT"));
    let err = MethodMatcher::compile(&["GET".into(), "G T".into()]).unwrap_err();
    assert_eq!(err.path, "[1]");
}

#[test]
fn cidrs_v4_v6_and_mapped() {
    let m = CidrMatcher::compile(&[
        "10.0.0.0/8".into(),
        "192.168.1.7".into(),
        "2001:db8::/32".into(),
        "172.16.5.9/12".into(),
    ])
    .unwrap();
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert!(m.matches(ip("10.200.1.1")));
    assert!(m.matches(ip("192.168.1.7")));
    assert!(!m.matches(ip("192.168.1.8")));
    assert!(m.matches(ip("2001:db8:1::1")));
    assert!(!m.matches(ip("2001:db9::1")));
    assert!(
        m.matches(ip("::ffff:10.1.1.1")),
        "v4-mapped v6 matches v4 range"
    );
    assert!(
        m.matches(ip("172.31.0.1")),
        "host bits in config are truncated"
    );
    let err = CidrMatcher::compile(&["10.0.0.0/8".into(), "10.0.0.0/33".into()]).unwrap_err();
    assert_eq!(err.path, "[1]");
    assert!(CidrMatcher::compile(&["nonsense".into()]).is_err());
}

#[test]
fn request_matcher_combines_kinds() {
    let spec: RequestMatchSpec = crate::config::from_str(
        r#"{
            "methods": ["GET", "HEAD"],
            "paths": [{"prefix": "/api/"}, {"exact": "/health"}],
            "hosts": [{"glob": "*.example.com"}],
            "headers": [{"name": "x-env", "value": {"exact": "prod"}}],
            "query": [{"name": "v"}],
            "source_cidrs": ["10.0.0.0/8"]
        }"#,
    )
    .unwrap();
    let m = spec.compile().unwrap();
    let base = || {
        RequestBuilder::get("/api/x?v=1")
            .header(":authority", "API.example.com:443")
            .header("x-env", "prod")
            .source("10.1.2.3:999")
    };
    assert!(m.matches(&base().build()));
    assert!(!m.matches(&base().header(":method", "POST").build()));
    assert!(!m.matches(&base().header(":path", "/other?v=1").build()));
    assert!(m.matches(&base().header(":path", "/health?v=2").build()));
    assert!(!m.matches(&base().header(":authority", "example.org").build()));
    assert!(!m.matches(&base().header(":path", "/api/x").build()));
    assert!(!m.matches(&base().source("11.0.0.1:1").build()));
    assert!(
        !m.matches(
            &RequestBuilder::get("/api/x?v=1")
                .header(":authority", "a.example.com")
                .header("x-env", "prod")
                .build()
        ),
        "no source address: CIDR rule cannot match"
    );
    assert!(RequestMatchSpec::default()
        .compile()
        .unwrap()
        .matches(&RequestBuilder::get("/").build()));
}

#[test]
fn request_matcher_errors_carry_the_full_path() {
    let spec: RequestMatchSpec = crate::config::from_str(
        r#"{"paths": [{"prefix": "/a"}, {"regex": "("}], "source_cidrs": ["10.0.0.0/8"]}"#,
    )
    .unwrap();
    let err = spec.compile().unwrap_err();
    assert_eq!(err.path, "paths[1].regex");
    let spec: RequestMatchSpec =
        crate::config::from_str(r#"{"source_cidrs": ["1.2.3.4", "x"]}"#).unwrap();
    assert_eq!(spec.compile().unwrap_err().path, "source_cidrs[1]");
    let spec: RequestMatchSpec =
        crate::config::from_str(r#"{"headers": [{"name": "ok"}, {"name": ""}]}"#).unwrap();
    assert_eq!(spec.compile().unwrap_err().path, "headers[1].name");
}

#[test]
fn path_rules_match_the_normalized_path_unless_raw_is_asked_for() {
    use crate::matcher::PathMatching;
    let spec: RequestMatchSpec =
        crate::config::from_str(r#"{"paths": [{"prefix": "/admin"}]}"#).unwrap();
    let normalized = spec.compile().unwrap();
    let raw = spec
        .compile()
        .unwrap()
        .with_path_matching(PathMatching::Raw);
    for p in [
        "/admin",
        "//admin",
        "/./admin",
        "/%61dmin",
        "/x/../admin",
        "/admin/../admin/x",
    ] {
        let req = RequestBuilder::get(p).build();
        assert!(normalized.matches(&req), "{p}");
        assert_eq!(raw.matches(&req), p.starts_with("/admin"), "{p} (raw)");
    }
    assert!(!normalized.matches(&RequestBuilder::get("/admin/../public").build()));
}

#[test]
fn request_matcher_cookies_consumers_and_lazy_claims() {
    use crate::jwt::Claims;
    use base64::Engine as _;
    let spec: RequestMatchSpec = crate::config::from_str(
        r#"{"paths": [{"prefix": "/a"}],
            "consumers": ["ci", "ops"],
            "cookies": [{"name": "beta", "value": {"exact": "yes"}}],
            "claims": [{"claim": "sub", "value": {"exact": "alice"}}]}"#,
    )
    .unwrap();
    let with_consumers = MatchOptions {
        no_consumers: None,
        ..MatchOptions::default()
    };
    let m = spec.compile_with(with_consumers).unwrap();
    assert!(m.needs_claims());
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"sub":"alice"}"#);
    let alice = Claims::from_payload_header(&payload).unwrap();
    let with_cookie = RequestBuilder::get("/a/x")
        .header("cookie", "x=1; beta=yes")
        .build();
    assert!(m.matches_with(&with_cookie, Some("ops"), &|| Some(&alice)));
    assert!(!m.matches_with(&with_cookie, Some("dev"), &|| Some(&alice)));
    assert!(!m.matches_with(&with_cookie, None, &|| Some(&alice)));
    assert!(
        !m.matches(&with_cookie),
        "consumer and claim conditions fail without them"
    );
    let no_cookie = RequestBuilder::get("/a/x").build();
    let called = std::cell::Cell::new(false);
    let lazy = || {
        called.set(true);
        Some(&alice)
    };
    assert!(!m.matches_with(&no_cookie, Some("ci"), &lazy));
    assert!(
        !called.get(),
        "claims decoded although an earlier condition failed"
    );
    let any: RequestMatchSpec = crate::config::from_str(r#"{"consumers": ["*"]}"#).unwrap();
    let any = any.compile_with(with_consumers).unwrap();
    assert!(any.matches_with(&no_cookie, Some("whoever"), &|| None));
    assert!(!any.matches_with(&no_cookie, None, &|| None));
}

#[test]
fn request_matcher_new_kinds_report_json_paths() {
    for (json, path) in [
        (
            r#"{"claims": [{"claim": "s"}, {"claim": ""}]}"#,
            "claims[1].claim",
        ),
        (
            r#"{"cookies": [{"name": "c", "value": {"regex": "("}}]}"#,
            "cookies[0].value.regex",
        ),
        (r#"{"consumers": ["a", ""]}"#, "consumers[1]"),
    ] {
        let err = crate::config::from_str::<RequestMatchSpec>(json)
            .unwrap()
            .compile_with(MatchOptions {
                no_consumers: None,
                ..MatchOptions::default()
            })
            .unwrap_err();
        assert_eq!(err.path, path, "{json}");
    }
    let spec: RequestMatchSpec = crate::config::from_str(r#"{"consumers": ["a"]}"#).unwrap();
    let err = spec.compile().unwrap_err();
    assert_eq!(
        (err.path.as_str(), err.reason.as_str()),
        ("consumers", "this filter identifies no API-key consumers"),
        "refused by default: a filter that supplies no consumer would never match the rule"
    );
    let err = spec
        .compile_with(MatchOptions::without_consumers(
            PathMatching::Normalized,
            "no API keys here",
        ))
        .unwrap_err();
    assert_eq!(
        (err.path.as_str(), err.reason.as_str()),
        ("consumers", "no API keys here")
    );
}

#[test]
fn facts_read_once_decide_as_each_rule_reading_the_request() {
    let specs = [
        r#"{}"#,
        r#"{"methods": ["DELETE"], "paths": [{"prefix": "/api/orders/1"}]}"#,
        r#"{"paths": [{"prefix": "/admin"}]}"#,
        r#"{"paths": [{"exact": "/x/../admin"}]}"#,
        r#"{"methods": ["GET", "POST"]}"#,
        r#"{"paths": [{"glob": "/static/**"}], "headers": [{"name": "x-a"}]}"#,
    ];
    let requests = [
        RequestBuilder::get("/admin").build(),
        RequestBuilder::get("/x/../admin?q=1").build(),
        RequestBuilder::get("//%61dmin").header("x-a", "1").build(),
        RequestBuilder::get("/static/a/b.css")
            .header("x-a", "1")
            .build(),
        RequestBuilder::post("/api/orders/17").build(),
        RequestBuilder::new("DELETE", "/api/orders/1").build(),
    ];
    for spec in specs {
        let parsed = crate::config::from_str::<RequestMatchSpec>(spec).unwrap();
        for mode in [PathMatching::Normalized, PathMatching::Raw] {
            let m = parsed.compile().unwrap().with_path_matching(mode);
            for req in &requests {
                let facts = MatchFacts::of(req);
                assert_eq!(
                    m.matches_facts(&facts, None, &|| None),
                    m.matches(req),
                    "{spec} {mode:?} {:?}",
                    req.raw_path()
                );
            }
        }
    }
}

/// `ip_key` is `canonical_ip(ip).to_string()`: every zero-group pattern of an IPv6 address
/// (the run choice, ties, edges, mapped and compatible forms), group values of every hex
/// width, and generated addresses of both families.
#[test]
fn ip_key_matches_display() {
    use std::net::{Ipv4Addr, Ipv6Addr};
    let check = |ip: IpAddr| assert_eq!(ip_key(ip), canonical_ip(ip).to_string(), "{ip:?}");
    let widths = [
        0u16, 1, 0xa, 0x10, 0xff, 0x100, 0xfff, 0x1000, 0xabcd, 0xffff,
    ];
    for mask in 0u32..256 {
        for &w in &widths[1..] {
            let mut g = [0u16; 8];
            for (i, s) in g.iter_mut().enumerate() {
                if mask & (1 << i) != 0 {
                    *s = w.wrapping_add(i as u16);
                }
            }
            check(IpAddr::V6(Ipv6Addr::from(g)));
        }
    }
    for &w in &widths {
        check(IpAddr::V6(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, w, w)));
        check(IpAddr::V6(Ipv6Addr::new(0, 0, 0, 0, 0, 0, w, w)));
        check(IpAddr::V6(Ipv6Addr::new(w, w, w, w, w, w, w, w)));
    }
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..100_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // Sparse groups so zero runs of every length occur.
        let mut g = [0u16; 8];
        for (i, s) in g.iter_mut().enumerate() {
            let r = (x >> (i * 8)) as u16;
            *s = if r & 3 == 0 { r >> 2 } else { 0 };
        }
        check(IpAddr::V6(Ipv6Addr::from(g)));
        check(IpAddr::V4(Ipv4Addr::from(x as u32)));
    }
    for v4 in ["0.0.0.0", "255.255.255.255", "10.0.0.1", "1.20.255.9"] {
        check(IpAddr::V4(v4.parse().unwrap()));
    }
}

/// `PathLead` is a necessary condition: on every request a matcher matches, its lead admits
/// the path; it turns requests away only where the matcher does too; matchers whose paths it
/// cannot summarise (one-byte, case-insensitive, suffix, regex, glob) have none.
#[test]
fn path_lead_never_turns_away_a_match() {
    let matcher = |json: &str| {
        crate::config::from_str::<RequestMatchSpec>(json)
            .unwrap()
            .compile()
            .unwrap()
    };
    let specs = [
        r#"{"paths":[{"prefix":"/internal/"}]}"#,
        r#"{"paths":[{"prefix":"/internal/"},{"exact":"/admin"}]}"#,
        r#"{"methods":["DELETE"],"paths":[{"prefix":"/api/orders/1"}]}"#,
        r#"{"paths":[{"exact":"/é"}]}"#,
        r#"{"paths":[{"prefix":"/a"}],"headers":[{"name":"x","invert":true}]}"#,
    ];
    let paths = [
        "/",
        "",
        "/i",
        "/internal",
        "/internal/",
        "/internal/x",
        "//internal/x",
        "/./internal/x",
        "/%69nternal/x",
        "/x/../internal/x",
        "/admin",
        "/admin/",
        "/Admin",
        "/api/orders/12",
        "/api/orders/2",
        "/é",
        "/éa",
        "/e",
        "/a",
        "/ab?q",
        "/x/../a",
    ];
    let mut turned_away = 0;
    for spec in specs {
        let m = matcher(spec);
        let lead = m.path_lead().expect(spec);
        for path in paths {
            for method in ["GET", "DELETE"] {
                let req = RequestBuilder::new(method, path).build();
                let facts = MatchFacts::of(&req);
                let matched = m.matches_facts(&facts, None, &|| None);
                let admitted = lead.admits(&facts);
                assert!(admitted || !matched, "{spec} {method} {path}");
                turned_away += usize::from(!admitted);
            }
        }
    }
    assert!(
        turned_away > 50,
        "the lead turns requests away ({turned_away})"
    );
    for spec in [
        r#"{"paths":[{"prefix":"/"}]}"#,
        r#"{"paths":[{"prefix":"/a","ignore_case":true}]}"#,
        r#"{"paths":[{"prefix":"/a"},{"suffix":".js"}]}"#,
        r#"{"paths":[{"regex":"/a.*"}]}"#,
        r#"{"paths":[{"glob":"/a/*"}]}"#,
        r#"{"methods":["GET"]}"#,
    ] {
        assert_eq!(matcher(spec).path_lead(), None, "{spec}");
    }
}
