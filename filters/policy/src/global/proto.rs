//! The messages of `envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit`: the request
//! encoded and the response decoded by hand, for the few fields the filter uses (field numbers
//! from `envoy/service/ratelimit/v3/rls.proto`, `envoy/extensions/common/ratelimit/v3/
//! ratelimit.proto`, `envoy/config/core/v3/base.proto`, `google/protobuf/duration.proto`).
//!
//! Why not `prost`: its generated code and runtime cost the module more than this whole file
//! (measured in `README.md`, "Global rate limits"), and the filter needs one request shape and
//! five small response messages. The unit tests check both directions against `prost`
//! (a dev-dependency) on the same message definitions, so the wire format is not ours alone.
//! Unknown fields are skipped (any wire type), as protobuf requires; malformed input is an
//! error, never a panic, and decoding is linear in the input.

/// The service and method of the callout.
pub const SERVICE: &str = "envoy.service.ratelimit.v3.RateLimitService";
pub const METHOD: &str = "ShouldRateLimit";

/// `RateLimitResponse.Code`.
pub mod code {
    pub const UNKNOWN: i32 = 0;
    pub const OK: i32 = 1;
    pub const OVER_LIMIT: i32 = 2;
}

/// `RateLimitRequest` with one descriptor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateLimitRequest {
    pub domain: String,
    /// The entries of the one descriptor (key, value).
    pub entries: Vec<(String, String)>,
    /// 0 means 1 to the service.
    pub hits_addend: u32,
}

/// `RateLimitResponse`, the fields the filter reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateLimitResponse {
    pub overall_code: i32,
    pub statuses: Vec<DescriptorStatus>,
    pub response_headers_to_add: Vec<HeaderValue>,
    pub request_headers_to_add: Vec<HeaderValue>,
}

/// `RateLimitResponse.DescriptorStatus`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescriptorStatus {
    pub code: i32,
    pub current_limit: Option<RateLimit>,
    pub limit_remaining: u32,
    /// `duration_until_reset` as (seconds, nanos).
    pub duration_until_reset: Option<(i64, i32)>,
}

/// `RateLimitResponse.RateLimit`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateLimit {
    pub requests_per_unit: u32,
    /// `Unit`: 1 second, 2 minute, 3 hour, 4 day, 5 month, 6 year.
    pub unit: i32,
}

/// `envoy.config.core.v3.HeaderValue`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderValue {
    pub key: String,
    pub value: String,
    /// Used by Envoy when `value` is empty.
    pub raw_value: Vec<u8>,
}

/// Seconds of one `RateLimit.Unit` (the longest a window of it can last); 0 if unknown.
pub fn unit_seconds(unit: i32) -> u64 {
    match unit {
        1 => 1,
        2 => 60,
        3 => 3600,
        4 => 86_400,
        5 => 31 * 86_400,
        6 => 366 * 86_400,
        _ => 0,
    }
}

// ---- encoding ----

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_varint(out, u64::from(field << 3 | 2));
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

impl RateLimitRequest {
    /// The wire form (proto3: default values are not written).
    pub fn encode(&self) -> Vec<u8> {
        let mut descriptor = Vec::with_capacity(64);
        let mut entry = Vec::with_capacity(64);
        for (k, v) in &self.entries {
            entry.clear();
            if !k.is_empty() {
                put_bytes(&mut entry, 1, k.as_bytes());
            }
            if !v.is_empty() {
                put_bytes(&mut entry, 2, v.as_bytes());
            }
            put_bytes(&mut descriptor, 1, &entry);
        }
        let mut out = Vec::with_capacity(descriptor.len() + self.domain.len() + 16);
        if !self.domain.is_empty() {
            put_bytes(&mut out, 1, self.domain.as_bytes());
        }
        put_bytes(&mut out, 2, &descriptor);
        if self.hits_addend != 0 {
            put_varint(&mut out, 3 << 3);
            put_varint(&mut out, u64::from(self.hits_addend));
        }
        out
    }
}

// ---- decoding ----

/// Why an answer could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    Truncated,
    BadVarint,
    BadWireType(u8),
    BadUtf8,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Truncated => f.write_str("truncated message"),
            DecodeError::BadVarint => f.write_str("malformed varint"),
            DecodeError::BadWireType(t) => write!(f, "unsupported wire type {t}"),
            DecodeError::BadUtf8 => f.write_str("string field is not UTF-8"),
        }
    }
}

/// A field's value as read from the wire.
enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    /// Fixed-size (wire types 1 and 5): skipped by every message here.
    Fixed,
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let (&b, rest) = self.buf.split_first().ok_or(DecodeError::Truncated)?;
            self.buf = rest;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(DecodeError::BadVarint)
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], DecodeError> {
        let n = usize::try_from(n).map_err(|_| DecodeError::Truncated)?;
        if n > self.buf.len() {
            return Err(DecodeError::Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    /// The next field (number, value), or `None` at the end.
    fn field(&mut self) -> Result<Option<(u64, Value<'a>)>, DecodeError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Fixed
            }
            2 => {
                let n = self.varint()?;
                Value::Bytes(self.take(n)?)
            }
            5 => {
                self.take(4)?;
                Value::Fixed
            }
            t => return Err(DecodeError::BadWireType(t as u8)),
        };
        Ok(Some((key >> 3, value)))
    }
}

/// Call `f` with every field of `buf`.
fn fields<'a>(
    buf: &'a [u8],
    mut f: impl FnMut(u64, Value<'a>) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    let mut r = Reader { buf };
    while let Some((n, v)) = r.field()? {
        f(n, v)?;
    }
    Ok(())
}

fn string(b: &[u8]) -> Result<String, DecodeError> {
    std::str::from_utf8(b)
        .map(String::from)
        .map_err(|_| DecodeError::BadUtf8)
}

/// proto3 `int32`/enum: the low 32 bits of the varint (negative values are 10-byte varints).
fn int32(v: u64) -> i32 {
    v as u32 as i32
}

impl RateLimitResponse {
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Self::default();
        fields(buf, |n, v| {
            match (n, v) {
                (1, Value::Varint(c)) => r.overall_code = int32(c),
                (2, Value::Bytes(b)) => r.statuses.push(DescriptorStatus::decode(b)?),
                (3, Value::Bytes(b)) => r.response_headers_to_add.push(HeaderValue::decode(b)?),
                (4, Value::Bytes(b)) => r.request_headers_to_add.push(HeaderValue::decode(b)?),
                _ => {}
            }
            Ok(())
        })?;
        Ok(r)
    }
}

impl DescriptorStatus {
    fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut s = Self::default();
        fields(buf, |n, v| {
            match (n, v) {
                (1, Value::Varint(c)) => s.code = int32(c),
                (2, Value::Bytes(b)) => {
                    let mut l = RateLimit::default();
                    fields(b, |n, v| {
                        match (n, v) {
                            (1, Value::Varint(x)) => l.requests_per_unit = x as u32,
                            (2, Value::Varint(x)) => l.unit = int32(x),
                            _ => {}
                        }
                        Ok(())
                    })?;
                    s.current_limit = Some(l);
                }
                (3, Value::Varint(x)) => s.limit_remaining = x as u32,
                (4, Value::Bytes(b)) => {
                    let (mut secs, mut nanos) = (0i64, 0i32);
                    fields(b, |n, v| {
                        match (n, v) {
                            (1, Value::Varint(x)) => secs = x as i64,
                            (2, Value::Varint(x)) => nanos = int32(x),
                            _ => {}
                        }
                        Ok(())
                    })?;
                    s.duration_until_reset = Some((secs, nanos));
                }
                _ => {}
            }
            Ok(())
        })?;
        Ok(s)
    }
}

impl HeaderValue {
    fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut h = Self::default();
        fields(buf, |n, v| {
            match (n, v) {
                (1, Value::Bytes(b)) => h.key = string(b)?,
                (2, Value::Bytes(b)) => h.value = string(b)?,
                (3, Value::Bytes(b)) => h.raw_value = b.to_vec(),
                _ => {}
            }
            Ok(())
        })?;
        Ok(h)
    }
}
