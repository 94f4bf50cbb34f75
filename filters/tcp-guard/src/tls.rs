//! TLS ClientHello parsing for SNI and ALPN, over however many bytes have arrived.
//!
//! A client's first flight is one or more TLS records of type handshake whose payload is the
//! ClientHello message (RFC 8446 section 4.1.2; TLS 1.0-1.2 use the same layout). It can
//! arrive split anywhere: across TCP reads (down to one byte per read) and, for large hellos,
//! across records. [`parse_client_hello`] is called on the bytes buffered so far and either
//! decides or says how many bytes it needs before it can say more ([`Hello::NeedMore`]), so
//! a caller re-parses only when that many have arrived: linear work however the bytes are
//! split. Every length is checked against what is present; nothing here panics or allocates
//! more than the input.

/// Record content type of handshake messages.
const HANDSHAKE: u8 = 22;
/// Handshake message type of a ClientHello.
const CLIENT_HELLO: u8 = 1;
/// Largest record payload a peer may send (2^14 plus the expansion TLS 1.2 allowed).
const MAX_RECORD: usize = (1 << 14) + 2048;
const EXT_SERVER_NAME: u16 = 0;
const EXT_ALPN: u16 = 16;

/// What the ClientHello says, as far as routing needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientHello {
    /// The `server_name` (host_name) extension, lowercased; `None` if absent.
    pub sni: Option<String>,
    /// ALPN protocol names in the client's order (`h2`, `http/1.1`, ...).
    pub alpn: Vec<String>,
}

/// Outcome of parsing the bytes buffered so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hello {
    /// Complete and valid.
    Done(ClientHello),
    /// Valid so far; at least this many bytes (in total) are needed to go on.
    NeedMore(usize),
    /// Not a valid ClientHello; the reason names what was wrong (for logs, never echoed).
    Malformed(&'static str),
}

/// A bounds-checked reader over a byte slice.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.bytes.len() {
            return None;
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn u24(&mut self) -> Option<usize> {
        self.take(3)
            .map(|b| (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2]))
    }
    /// A vector with a `len_bytes`-byte length prefix.
    fn vec(&mut self, len_bytes: usize) -> Option<Reader<'a>> {
        let len = match len_bytes {
            1 => usize::from(self.u8()?),
            2 => usize::from(self.u16()?),
            _ => self.u24()?,
        };
        self.take(len).map(Reader::new)
    }
    fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// Parse the ClientHello from the start of a connection's bytes.
///
/// The caller bounds how much it buffers: a hello larger than that shows up as
/// `NeedMore(n)` with `n` over the bound, and the caller decides (tcp-guard closes).
pub fn parse_client_hello(buf: &[u8]) -> Hello {
    // Reassemble the handshake message from as many records as it spans.
    let mut handshake: Vec<u8> = Vec::new();
    let mut pos = 0usize;
    loop {
        let Some(header) = buf.get(pos..pos + 5) else {
            return Hello::NeedMore(pos + 5);
        };
        if header[0] != HANDSHAKE {
            return Hello::Malformed("record is not a handshake record");
        }
        if header[1] != 3 || header[2] > 4 {
            return Hello::Malformed("record version is not TLS");
        }
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        if len == 0 || len > MAX_RECORD {
            return Hello::Malformed("record length out of range");
        }
        let end = pos + 5 + len;
        let Some(fragment) = buf.get(pos + 5..end) else {
            return Hello::NeedMore(end);
        };
        handshake.extend_from_slice(fragment);
        pos = end;
        if handshake[0] != CLIENT_HELLO {
            return Hello::Malformed("first handshake message is not a ClientHello");
        }
        let Some(len_bytes) = handshake.get(1..4) else {
            continue; // the 4-byte handshake header itself is split across records
        };
        let body_len = (usize::from(len_bytes[0]) << 16)
            | (usize::from(len_bytes[1]) << 8)
            | usize::from(len_bytes[2]);
        if handshake.len() >= 4 + body_len {
            return parse_body(&handshake[4..4 + body_len]);
        }
        // More records follow; at least the rest of this message plus one header.
        let missing = 4 + body_len - handshake.len();
        if buf.len() < pos + 5 + missing {
            return Hello::NeedMore(pos + 5 + missing);
        }
    }
}

fn parse_body(body: &[u8]) -> Hello {
    match parse_body_inner(body) {
        Ok(hello) => Hello::Done(hello),
        Err(reason) => Hello::Malformed(reason),
    }
}

fn parse_body_inner(body: &[u8]) -> Result<ClientHello, &'static str> {
    let mut r = Reader::new(body);
    let version = r.u16().ok_or("truncated version")?;
    if version >> 8 != 3 {
        return Err("ClientHello version is not TLS");
    }
    r.take(32).ok_or("truncated random")?;
    let session = r.vec(1).ok_or("truncated session id")?;
    if session.bytes.len() > 32 {
        return Err("session id longer than 32 bytes");
    }
    let suites = r.vec(2).ok_or("truncated cipher suites")?;
    if suites.bytes.is_empty() || suites.bytes.len() % 2 != 0 {
        return Err("cipher suite list empty or odd");
    }
    let compression = r.vec(1).ok_or("truncated compression methods")?;
    if compression.bytes.is_empty() {
        return Err("no compression method");
    }
    let mut hello = ClientHello::default();
    if r.is_empty() {
        return Ok(hello); // no extensions (TLS 1.0-1.2 clients may omit them)
    }
    let mut exts = r.vec(2).ok_or("truncated extensions")?;
    let mut seen: Vec<u16> = Vec::new();
    while !exts.is_empty() {
        let kind = exts.u16().ok_or("truncated extension type")?;
        let data = exts.vec(2).ok_or("truncated extension")?;
        if seen.contains(&kind) {
            return Err("duplicate extension");
        }
        seen.push(kind);
        match kind {
            EXT_SERVER_NAME => hello.sni = parse_sni(data)?,
            EXT_ALPN => hello.alpn = parse_alpn(data)?,
            _ => {}
        }
    }
    Ok(hello)
}

fn parse_sni(mut data: Reader<'_>) -> Result<Option<String>, &'static str> {
    let mut list = data.vec(2).ok_or("truncated server name list")?;
    if !data.is_empty() || list.is_empty() {
        return Err("bad server name extension");
    }
    let mut host = None;
    while !list.is_empty() {
        let name_type = list.u8().ok_or("truncated server name")?;
        let name = list.vec(2).ok_or("truncated server name")?;
        if name_type != 0 {
            continue; // unknown name types are skipped (RFC 6066 section 3)
        }
        if host.is_some() {
            return Err("more than one host_name");
        }
        host = Some(valid_host_name(name.bytes)?);
    }
    Ok(host)
}

/// A DNS host name as RFC 6066 allows in SNI: ASCII letters, digits, `-`, `_` and dots
/// between non-empty labels, no trailing dot, at most 255 bytes. Lowercased.
fn valid_host_name(bytes: &[u8]) -> Result<String, &'static str> {
    let ok = !bytes.is_empty()
        && bytes.len() <= 255
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && bytes.split(|b| *b == b'.').all(|label| !label.is_empty());
    if !ok {
        return Err("server name is not a valid host name");
    }
    Ok(String::from_utf8_lossy(bytes).to_ascii_lowercase())
}

fn parse_alpn(mut data: Reader<'_>) -> Result<Vec<String>, &'static str> {
    let mut list = data.vec(2).ok_or("truncated ALPN list")?;
    if !data.is_empty() || list.is_empty() {
        return Err("bad ALPN extension");
    }
    let mut out = Vec::new();
    while !list.is_empty() {
        let name = list.vec(1).ok_or("truncated ALPN name")?;
        if name.bytes.is_empty() {
            return Err("empty ALPN name");
        }
        out.push(String::from_utf8_lossy(name.bytes).into_owned());
    }
    Ok(out)
}

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;
