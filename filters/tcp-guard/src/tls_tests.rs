//! ClientHello parsing: real hellos from rustls, every split point, multi-record hellos and
//! malformed input.

use super::*;
use test_support::tls::client_hello;

fn ext(kind: u16, data: &[u8]) -> Vec<u8> {
    let mut v = kind.to_be_bytes().to_vec();
    v.extend_from_slice(&(data.len() as u16).to_be_bytes());
    v.extend_from_slice(data);
    v
}

fn sni_ext(names: &[(u8, &[u8])]) -> Vec<u8> {
    let mut list = Vec::new();
    for (t, n) in names {
        list.push(*t);
        list.extend_from_slice(&(n.len() as u16).to_be_bytes());
        list.extend_from_slice(n);
    }
    let mut data = (list.len() as u16).to_be_bytes().to_vec();
    data.extend_from_slice(&list);
    ext(0, &data)
}

fn alpn_ext(names: &[&str]) -> Vec<u8> {
    let mut list = Vec::new();
    for n in names {
        list.push(n.len() as u8);
        list.extend_from_slice(n.as_bytes());
    }
    let mut data = (list.len() as u16).to_be_bytes().to_vec();
    data.extend_from_slice(&list);
    ext(16, &data)
}

/// A ClientHello handshake message (header included) with `exts` (None: no extensions block).
fn handshake(exts: Option<&[Vec<u8>]>) -> Vec<u8> {
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7u8; 32]);
    body.extend_from_slice(&[0]); // session id
    body.extend_from_slice(&[0, 2, 0x13, 0x01]); // one cipher suite
    body.extend_from_slice(&[1, 0]); // null compression
    if let Some(exts) = exts {
        let all: Vec<u8> = exts.concat();
        body.extend_from_slice(&(all.len() as u16).to_be_bytes());
        body.extend_from_slice(&all);
    }
    let mut msg = vec![1];
    msg.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    msg.extend_from_slice(&body);
    msg
}

/// Wrap a handshake message in records of at most `per_record` payload bytes.
fn records(msg: &[u8], per_record: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in msg.chunks(per_record) {
        out.extend_from_slice(&[22, 3, 1]);
        out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

/// Feed `bytes` one at a time, re-parsing only when `NeedMore` says enough has arrived, as
/// the filter does; returns the outcome and how many parses it took.
fn parse_bytewise(bytes: &[u8]) -> (Hello, usize) {
    let mut need = 0;
    let mut parses = 0;
    for end in 1..=bytes.len() {
        if end < need {
            continue;
        }
        parses += 1;
        match parse_client_hello(&bytes[..end]) {
            Hello::NeedMore(n) => need = n,
            other => return (other, parses),
        }
    }
    (Hello::NeedMore(need), parses)
}

#[test]
fn real_rustls_hello_gives_sni_and_alpn() {
    let bytes = client_hello("a.example.com", &["h2", "http/1.1"]);
    let want = ClientHello {
        sni: Some("a.example.com".into()),
        alpn: vec!["h2".into(), "http/1.1".into()],
    };
    assert_eq!(parse_client_hello(&bytes), Hello::Done(want.clone()));
    // Split into 1-byte reads: same answer, and only a handful of parses (one per header).
    let (outcome, parses) = parse_bytewise(&bytes);
    assert_eq!(outcome, Hello::Done(want));
    assert!(
        parses <= 3,
        "re-parsed {parses} times for {} bytes",
        bytes.len()
    );
}

#[test]
fn every_prefix_of_a_real_hello_needs_more_never_fails() {
    let bytes = client_hello("b.example.com", &[]);
    for end in 0..bytes.len() {
        match parse_client_hello(&bytes[..end]) {
            Hello::NeedMore(n) => assert!(n > end && n <= bytes.len(), "{end}: {n}"),
            other => panic!("prefix of {end} bytes gave {other:?}"),
        }
    }
}

#[test]
fn hello_split_across_records_is_reassembled() {
    let msg = handshake(Some(&[
        sni_ext(&[(0, b"Multi.Example.COM")]),
        alpn_ext(&["h2"]),
    ]));
    for per_record in [1, 2, 3, 7, 50] {
        let bytes = records(&msg, per_record);
        let (outcome, _) = parse_bytewise(&bytes);
        assert_eq!(
            outcome,
            Hello::Done(ClientHello {
                sni: Some("multi.example.com".into()),
                alpn: vec!["h2".into()],
            }),
            "{per_record} bytes per record"
        );
    }
}

#[test]
fn hello_without_extensions_or_sni() {
    let none = records(&handshake(None), 1000);
    assert_eq!(
        parse_client_hello(&none),
        Hello::Done(ClientHello::default())
    );
    let alpn_only = records(&handshake(Some(&[alpn_ext(&["x"])])), 1000);
    assert_eq!(
        parse_client_hello(&alpn_only),
        Hello::Done(ClientHello {
            sni: None,
            alpn: vec!["x".into()]
        })
    );
}

#[test]
fn malformed_hellos_are_reported_not_panicked() {
    let good = handshake(Some(&[sni_ext(&[(0, b"a.com")])]));
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            vec![23, 3, 3, 0, 5, 1, 2, 3, 4, 5],
            "not a handshake record",
        ),
        (vec![22, 2, 0, 0, 5, 1, 2, 3, 4, 5], "record version"),
        (vec![22, 3, 1, 0, 0], "record length"),
        (vec![22, 3, 1, 0xff, 0xff], "record length"),
        (records(&[2, 0, 0, 0], 100), "not a ClientHello"),
        (
            records(
                &handshake(Some(&[sni_ext(&[(0, b"a.com"), (0, b"b.com")])])),
                1000,
            ),
            "more than one host_name",
        ),
        (
            records(&handshake(Some(&[sni_ext(&[(0, b"bad name")])])), 1000),
            "valid host name",
        ),
        (
            records(&handshake(Some(&[sni_ext(&[(0, b"a..com")])])), 1000),
            "valid host name",
        ),
        (
            records(
                &handshake(Some(&[alpn_ext(&["h2"]), alpn_ext(&["h2"])])),
                1000,
            ),
            "duplicate extension",
        ),
        (
            records(&handshake(Some(&[ext(16, &[0, 1, 0])])), 1000),
            "empty ALPN name",
        ),
    ];
    for (bytes, want) in cases {
        match parse_client_hello(&bytes) {
            Hello::Malformed(reason) => assert!(reason.contains(want), "{reason} vs {want}"),
            other => panic!("{bytes:?}: {other:?}, wanted {want}"),
        }
    }
    // A hello whose declared length overruns its extensions block.
    let mut lying = good.clone();
    let n = lying.len();
    lying[n - 10] = 0xff; // inflate the server name list length
    match parse_client_hello(&records(&lying, 1000)) {
        Hello::Malformed(_) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_name_types_are_skipped() {
    let bytes = records(
        &handshake(Some(&[sni_ext(&[(7, b"\x00\x01"), (0, b"ok.example")])])),
        1000,
    );
    assert_eq!(
        parse_client_hello(&bytes),
        Hello::Done(ClientHello {
            sni: Some("ok.example".into()),
            alpn: vec![]
        })
    );
}

#[test]
fn arbitrary_bytes_never_panic() {
    // A cheap deterministic fuzz: mutate a real hello at every position.
    let base = client_hello("fuzz.example.com", &["h2"]);
    for i in 0..base.len() {
        for v in [0u8, 1, 0x7f, 0xff] {
            let mut b = base.clone();
            b[i] = v;
            let _ = parse_client_hello(&b);
            let _ = parse_client_hello(&b[..i]);
        }
    }
}
