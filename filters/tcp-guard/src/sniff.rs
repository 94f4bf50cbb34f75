//! Protocol detection from a connection's first bytes.
//!
//! Each protocol is recognised by a fixed prefix, so detection needs at most
//! [`MAX_SNIFF_BYTES`] bytes and answers "need more" only while the bytes so far are a proper
//! prefix of some signature. Client-first protocols only: a server-first protocol (SMTP,
//! MySQL, ...) sends nothing until the server speaks, and is classified when the inspection
//! times out (see the filter's README).

use sdk_ext::config::{ConfigError, FromJson, Node};
use std::fmt;

/// What a connection speaks, as far as its first bytes tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// A TLS handshake record (`0x16 0x03`).
    Tls,
    /// An HTTP/1.x request line (`GET `, `POST `, ...).
    Http1,
    /// The HTTP/2 client connection preface (`PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`).
    Http2,
    /// An SSH identification string (`SSH-`).
    Ssh,
    /// Anything else, including a connection that sent nothing before the timeout.
    Other,
}

impl FromJson for Protocol {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        node.choice(&Protocol::ALL.map(|p| (p.as_str(), p)))
    }
}

impl Protocol {
    pub const ALL: [Protocol; 5] = [
        Protocol::Tls,
        Protocol::Http1,
        Protocol::Http2,
        Protocol::Ssh,
        Protocol::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tls => "tls",
            Protocol::Http1 => "http1",
            Protocol::Http2 => "http2",
            Protocol::Ssh => "ssh",
            Protocol::Other => "other",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Request-line prefixes of HTTP/1.x methods (RFC 9110 plus PATCH).
const HTTP1_METHODS: [&[u8]; 9] = [
    b"GET ",
    b"POST ",
    b"PUT ",
    b"HEAD ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
    b"TRACE ",
];

/// The most bytes detection ever needs (the HTTP/2 preface).
pub const MAX_SNIFF_BYTES: usize = H2_PREFACE.len();

/// Detection result for the bytes so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniff {
    Is(Protocol),
    /// The bytes so far are a proper prefix of a signature.
    NeedMore,
}

/// How `buf` relates to `signature`: it contains it, could still become it, or cannot.
fn against(buf: &[u8], signature: &[u8]) -> Option<bool> {
    if buf.starts_with(signature) {
        Some(true)
    } else if signature.starts_with(buf) {
        None
    } else {
        Some(false)
    }
}

/// Classify the first bytes of a connection.
pub fn sniff(buf: &[u8]) -> Sniff {
    match buf {
        [] => return Sniff::NeedMore,
        [0x16] => return Sniff::NeedMore,
        [0x16, 0x03, ..] => return Sniff::Is(Protocol::Tls),
        _ => {}
    }
    let mut undecided = false;
    let signatures = [
        (Protocol::Http2, H2_PREFACE),
        (Protocol::Ssh, b"SSH-".as_slice()),
    ]
    .into_iter()
    .chain(HTTP1_METHODS.iter().map(|m| (Protocol::Http1, *m)));
    for (protocol, signature) in signatures {
        match against(buf, signature) {
            Some(true) => return Sniff::Is(protocol),
            None => undecided = true,
            Some(false) => {}
        }
    }
    if undecided {
        Sniff::NeedMore
    } else {
        Sniff::Is(Protocol::Other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases: &[(&[u8], Sniff)] = &[
            (b"", Sniff::NeedMore),
            (b"\x16", Sniff::NeedMore),
            (b"\x16\x03", Sniff::Is(Protocol::Tls)),
            (b"\x16\x01", Sniff::Is(Protocol::Other)),
            (b"GET / HTTP/1.1\r\n", Sniff::Is(Protocol::Http1)),
            (b"GE", Sniff::NeedMore),
            (b"GET", Sniff::NeedMore),
            (b"GETX", Sniff::Is(Protocol::Other)),
            (b"OPTIONS * HTTP/1.1", Sniff::Is(Protocol::Http1)),
            (
                b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
                Sniff::Is(Protocol::Http2),
            ),
            (b"PRI * HTTP/2.0\r\n", Sniff::NeedMore),
            (b"PRI * HTTP/1.1", Sniff::Is(Protocol::Other)),
            (b"SSH-2.0-OpenSSH_9.6\r\n", Sniff::Is(Protocol::Ssh)),
            (b"SS", Sniff::NeedMore),
            (
                b"\x00\x00\x00\x08\x04\xd2\x16\x2f",
                Sniff::Is(Protocol::Other),
            ),
            (b"get / HTTP/1.1", Sniff::Is(Protocol::Other)),
        ];
        for (bytes, want) in cases {
            assert_eq!(sniff(bytes), *want, "{:?}", String::from_utf8_lossy(bytes));
        }
    }

    #[test]
    fn never_needs_more_than_the_bound() {
        // Any input of MAX_SNIFF_BYTES bytes is decided.
        for first in 0..=255u8 {
            let mut b = vec![first; MAX_SNIFF_BYTES];
            assert_ne!(sniff(&b), Sniff::NeedMore);
            b.copy_from_slice(H2_PREFACE);
            assert_eq!(sniff(&b), Sniff::Is(Protocol::Http2));
        }
    }
}
