//! The protocol side of global limits: the request a rule sends, and what each answer means.
//! Messages are built and read with `prost` (the reference) and the hand-written codec must
//! agree with it.

use super::proto::code;
use super::*;
use prost::Message;
use sdk_ext::Services;

/// The protocol's messages as `prost` structs: the reference the codec is checked against.
pub(crate) mod pb {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RateLimitRequest {
        #[prost(string, tag = "1")]
        pub domain: String,
        #[prost(message, repeated, tag = "2")]
        pub descriptors: Vec<RateLimitDescriptor>,
        #[prost(uint32, tag = "3")]
        pub hits_addend: u32,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RateLimitDescriptor {
        #[prost(message, repeated, tag = "1")]
        pub entries: Vec<Entry>,
        /// `limit` (an override): never sent by the filter; here to test skipping.
        #[prost(message, optional, tag = "2")]
        pub limit: Option<RateLimit>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Entry {
        #[prost(string, tag = "1")]
        pub key: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RateLimitResponse {
        #[prost(int32, tag = "1")]
        pub overall_code: i32,
        #[prost(message, repeated, tag = "2")]
        pub statuses: Vec<DescriptorStatus>,
        #[prost(message, repeated, tag = "3")]
        pub response_headers_to_add: Vec<HeaderValue>,
        #[prost(message, repeated, tag = "4")]
        pub request_headers_to_add: Vec<HeaderValue>,
        /// Fields the filter does not read: `raw_body` (5), `quota` (7, a message).
        #[prost(bytes = "vec", tag = "5")]
        pub raw_body: Vec<u8>,
        #[prost(message, optional, tag = "7")]
        pub quota: Option<Duration>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct DescriptorStatus {
        #[prost(int32, tag = "1")]
        pub code: i32,
        #[prost(message, optional, tag = "2")]
        pub current_limit: Option<RateLimit>,
        #[prost(uint32, tag = "3")]
        pub limit_remaining: u32,
        #[prost(message, optional, tag = "4")]
        pub duration_until_reset: Option<Duration>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RateLimit {
        #[prost(uint32, tag = "1")]
        pub requests_per_unit: u32,
        #[prost(int32, tag = "2")]
        pub unit: i32,
        #[prost(string, tag = "3")]
        pub name: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Duration {
        #[prost(int64, tag = "1")]
        pub seconds: i64,
        #[prost(int32, tag = "2")]
        pub nanos: i32,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct HeaderValue {
        #[prost(string, tag = "1")]
        pub key: String,
        #[prost(string, tag = "2")]
        pub value: String,
        #[prost(bytes = "vec", tag = "3")]
        pub raw_value: Vec<u8>,
    }
}

fn limit(json: &str, key: &[KeyPart]) -> Result<GlobalLimit, ConfigError> {
    let cfg: GlobalSpec = serde_json::from_str(json).unwrap();
    let mut budget = SlotBudget::new("t", 1000, &Services::local()).unwrap();
    GlobalLimit::compile(&cfg, key, "r", &mut budget)
}

const BASIC: &str = r#"{"cluster": "ratelimit", "domain": "edge", "timeout": "250ms",
    "entries": [{"key": "generic_key", "value": "api"}]}"#;

#[test]
fn the_request_carries_domain_literal_entries_then_key_parts_and_hits() {
    let parts = [
        KeyPart::SourceIp,
        KeyPart::Header("x-user".into()),
        KeyPart::Consumer,
    ];
    let g = limit(BASIC, &parts).unwrap();
    let call = g.call(
        &parts,
        &[Some("10.0.0.1".into()), Some("alice".into()), None],
    );
    assert_eq!(call.cluster, "ratelimit");
    assert_eq!(call.service, "envoy.service.ratelimit.v3.RateLimitService");
    assert_eq!(call.method, "ShouldRateLimit");
    assert_eq!(call.timeout, Duration::from_millis(250));
    let req = pb::RateLimitRequest::decode(call.message.as_slice()).unwrap();
    assert_eq!(req.domain, "edge");
    assert_eq!(req.hits_addend, 1);
    let entries: Vec<(&str, &str)> = req.descriptors[0]
        .entries
        .iter()
        .map(|e| (e.key.as_str(), e.value.as_str()))
        .collect();
    assert_eq!(
        entries,
        [
            ("generic_key", "api"),
            ("remote_address", "10.0.0.1"),
            ("x-user", "alice"),
            // Absent values share one count, as they share one local bucket.
            ("consumer", ""),
        ]
    );
}

#[test]
fn the_request_bytes_match_the_protobuf_wire_format() {
    // Hand-assembled from rls.proto: domain (1) "d", descriptors (2) { entries (1) { key (1)
    // "k", value (2) "v" } }, hits_addend (3) 3.
    let g = limit(
        r#"{"cluster": "c", "domain": "d", "hits_addend": 3,
            "entries": [{"key": "k", "value": "v"}]}"#,
        &[],
    )
    .unwrap();
    let call = g.call(&[], &[]);
    let expected = [
        0x0a, 1, b'd', 0x12, 8, 0x0a, 6, 0x0a, 1, b'k', 0x12, 1, b'v', 0x18, 3,
    ];
    assert_eq!(call.message, expected);
}

fn answer(r: &pb::RateLimitResponse) -> Vec<u8> {
    r.encode_to_vec()
}

fn hv(k: &str, v: &str) -> pb::HeaderValue {
    pb::HeaderValue {
        key: k.into(),
        value: v.into(),
        raw_value: Vec::new(),
    }
}

#[test]
fn ok_passes_the_services_headers_on() {
    let g = limit(BASIC, &[]).unwrap();
    let bytes = answer(&pb::RateLimitResponse {
        overall_code: code::OK,
        request_headers_to_add: vec![
            hv("x-quota", "gold"),
            hv(":path", "/evil"),
            hv("bad name", "x"),
        ],
        response_headers_to_add: vec![hv("RateLimit-Remaining", "4")],
        ..Default::default()
    });
    assert_eq!(
        g.interpret(CallOutcome::Answer(&bytes)),
        Answer::Allow {
            request_headers: vec![("x-quota".into(), "gold".into())],
            response_headers: vec![("ratelimit-remaining".into(), "4".into())],
        }
    );
}

#[test]
fn over_limit_answers_with_retry_after_and_ratelimit_headers() {
    let g = limit(BASIC, &[]).unwrap();
    let status = |code, limit, secs| pb::DescriptorStatus {
        code,
        current_limit: Some(pb::RateLimit {
            requests_per_unit: limit,
            unit: 2,
            name: String::new(),
        }),
        limit_remaining: 0,
        duration_until_reset: Some(pb::Duration {
            seconds: secs,
            nanos: 1,
        }),
    };
    let bytes = answer(&pb::RateLimitResponse {
        overall_code: code::OVER_LIMIT,
        statuses: vec![
            status(code::OK, 100, 50),
            status(code::OVER_LIMIT, 10, 7),
            status(code::OVER_LIMIT, 20, 30),
        ],
        ..Default::default()
    });
    let Answer::OverLimit { headers } = g.interpret(CallOutcome::Answer(&bytes)) else {
        panic!("not over limit");
    };
    // The over-limit status with the longest wait decides; partial seconds round up.
    assert_eq!(
        headers,
        [
            ("retry-after".to_string(), "31".to_string()),
            ("ratelimit-limit".into(), "20".into()),
            ("ratelimit-remaining".into(), "0".into()),
            ("ratelimit-reset".into(), "31".into()),
        ]
    );
    // Headers the service sends itself win over computed ones.
    let bytes = answer(&pb::RateLimitResponse {
        overall_code: code::OVER_LIMIT,
        statuses: vec![status(code::OVER_LIMIT, 10, 7)],
        response_headers_to_add: vec![hv("retry-after", "60")],
        ..Default::default()
    });
    let Answer::OverLimit { headers } = g.interpret(CallOutcome::Answer(&bytes)) else {
        panic!("not over limit");
    };
    assert_eq!(headers[0], ("retry-after".into(), "60".into()));
    assert_eq!(
        headers.iter().filter(|(n, _)| n == "retry-after").count(),
        1
    );
}

#[test]
fn failures_unknown_codes_and_garbage_are_failures() {
    let g = limit(BASIC, &[]).unwrap();
    let timeout = CallOutcome::Failed {
        status: sdk_ext::callout::grpc_status::UNAVAILABLE,
        dispatched: true,
        timed_out: true,
    };
    assert!(matches!(
        g.interpret(timeout),
        Answer::Failed { timeout: true, .. }
    ));
    let unavailable = CallOutcome::Failed {
        status: 14,
        dispatched: true,
        timed_out: false,
    };
    assert!(matches!(
        g.interpret(unavailable),
        Answer::Failed { timeout: false, .. }
    ));
    let unknown = answer(&pb::RateLimitResponse::default());
    assert!(matches!(
        g.interpret(CallOutcome::Answer(&unknown)),
        Answer::Failed { .. }
    ));
    assert!(matches!(
        g.interpret(CallOutcome::Answer(&[0xff, 0xff, 0xff])),
        Answer::Failed { .. }
    ));
}

#[test]
fn config_errors_name_the_field() {
    let err = |json: &str, key: &[KeyPart]| limit(json, key).unwrap_err().path;
    assert_eq!(
        err(
            r#"{"cluster": "", "domain": "d", "entries": [{"key":"k","value":"v"}]}"#,
            &[]
        ),
        "cluster"
    );
    assert_eq!(
        err(
            r#"{"cluster": "c", "domain": "", "entries": [{"key":"k","value":"v"}]}"#,
            &[]
        ),
        "domain"
    );
    assert_eq!(
        err(
            r#"{"cluster": "c", "domain": "d", "timeout": "2m", "entries": [{"key":"k","value":"v"}]}"#,
            &[]
        ),
        "timeout"
    );
    assert_eq!(
        err(
            r#"{"cluster": "c", "domain": "d", "timeout": "soon", "entries": [{"key":"k","value":"v"}]}"#,
            &[]
        ),
        "timeout"
    );
    assert_eq!(
        err(
            r#"{"cluster": "c", "domain": "d", "hits_addend": 0, "entries": [{"key":"k","value":"v"}]}"#,
            &[]
        ),
        "hits_addend"
    );
    assert_eq!(
        err(
            r#"{"cluster": "c", "domain": "d", "failure_status": 99, "entries": [{"key":"k","value":"v"}]}"#,
            &[]
        ),
        "failure_status"
    );
    assert_eq!(
        err(
            r#"{"cluster": "c", "domain": "d", "entries": [{"key":"","value":"v"}]}"#,
            &[]
        ),
        "entries[0].key"
    );
    assert_eq!(err(r#"{"cluster": "c", "domain": "d"}"#, &[]), "entries");
    assert_eq!(
        err(
            r#"{"cluster": "c", "domain": "d", "local_first": {"max_tokens": 0, "fill_interval": "1s"}}"#,
            &[KeyPart::SourceIp]
        ),
        "local_first.max_tokens"
    );
    // Key parts alone are a descriptor.
    assert!(limit(r#"{"cluster": "c", "domain": "d"}"#, &[KeyPart::SourceIp]).is_ok());
}

#[test]
fn the_codec_agrees_with_prost_both_ways() {
    // Request: ours encoded, prost decodes; empty strings and hits_addend 0 are omitted alike.
    let ours = proto::RateLimitRequest {
        domain: "edge".into(),
        entries: vec![("k".into(), String::new()), ("é".into(), "v".repeat(200))],
        hits_addend: 300,
    };
    let reference = pb::RateLimitRequest {
        domain: "edge".into(),
        descriptors: vec![pb::RateLimitDescriptor {
            entries: vec![
                pb::Entry {
                    key: "k".into(),
                    value: String::new(),
                },
                pb::Entry {
                    key: "é".into(),
                    value: "v".repeat(200),
                },
            ],
            limit: None,
        }],
        hits_addend: 300,
    };
    assert_eq!(ours.encode(), reference.encode_to_vec());
    // Response: prost encodes every field (including negative codes and unread fields), ours
    // decodes what it reads and skips the rest.
    let full = pb::RateLimitResponse {
        overall_code: 2,
        statuses: vec![
            pb::DescriptorStatus {
                code: 2,
                current_limit: Some(pb::RateLimit {
                    requests_per_unit: 70_000,
                    unit: 3,
                    name: "n".into(),
                }),
                limit_remaining: 5,
                duration_until_reset: Some(pb::Duration {
                    seconds: 3601,
                    nanos: -1,
                }),
            },
            pb::DescriptorStatus {
                code: -7,
                ..Default::default()
            },
        ],
        response_headers_to_add: vec![hv("a", "1")],
        request_headers_to_add: vec![pb::HeaderValue {
            key: "b".into(),
            value: String::new(),
            raw_value: b"raw".to_vec(),
        }],
        raw_body: b"body".to_vec(),
        quota: Some(pb::Duration {
            seconds: 1,
            nanos: 2,
        }),
    };
    let decoded = proto::RateLimitResponse::decode(&full.encode_to_vec()).unwrap();
    assert_eq!(decoded.overall_code, 2);
    assert_eq!(decoded.statuses.len(), 2);
    assert_eq!(
        decoded.statuses[0],
        proto::DescriptorStatus {
            code: 2,
            current_limit: Some(proto::RateLimit {
                requests_per_unit: 70_000,
                unit: 3
            }),
            limit_remaining: 5,
            duration_until_reset: Some((3601, -1)),
        }
    );
    assert_eq!(decoded.statuses[1].code, -7);
    assert_eq!(decoded.response_headers_to_add[0].key, "a");
    assert_eq!(decoded.request_headers_to_add[0].raw_value, b"raw");
}

#[test]
fn malformed_answers_are_errors_never_panics() {
    let good = answer(&pb::RateLimitResponse {
        overall_code: 1,
        response_headers_to_add: vec![hv("x-a", "b")],
        ..Default::default()
    });
    // Every truncation of a valid message either decodes (a field boundary) or errs.
    for n in 0..good.len() {
        let _ = proto::RateLimitResponse::decode(&good[..n]);
    }
    use proto::DecodeError::*;
    assert_eq!(
        proto::RateLimitResponse::decode(&[0x1a, 0x05, 0x0a]),
        Err(Truncated)
    );
    assert_eq!(
        proto::RateLimitResponse::decode(&[
            0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01
        ]),
        Err(BadVarint)
    );
    assert_eq!(
        proto::RateLimitResponse::decode(&[0x0b]),
        Err(BadWireType(3))
    );
    assert_eq!(
        proto::RateLimitResponse::decode(&[0x1a, 0x03, 0x0a, 0x01, 0xff]),
        Err(BadUtf8)
    );
    // Fixed-size unknown fields are skipped.
    assert_eq!(
        proto::RateLimitResponse::decode(&[
            0x49, 1, 2, 3, 4, 5, 6, 7, 8, 0x55, 1, 2, 3, 4, 0x08, 0x02
        ])
        .unwrap()
        .overall_code,
        2
    );
}
