//! Hostile input generators shared by the linear-time test, the `hostile` example and the
//! Envoy measurements (`hostile_fuel`, `hostile_cpu`): repeated tokens that made earlier
//! versions of the engine quadratic ([`GENERATORS`]), and documents whose structure is the
//! hostile part, each at the edge of the limit that bounds it ([`DOCUMENTS`]). [`cases`] lists
//! them all.

use crate::config::Limits;

/// `(name, unit)`: a body is `unit` repeated to the wanted size.
pub const GENERATORS: &[(&str, &str)] = &[
    ("dollar-brace", "${"),
    ("braces", "{{"),
    ("erb", "<%"),
    ("document", "document."),
    ("quote-comment", "'/*("),
    ("dollar-comment", "$/*"),
    ("plain-a", "a"),
    ("lt", "<"),
    ("quote", "'"),
    ("dquote", "\""),
    ("paren", "("),
    ("comment", "/*"),
    ("semicolon", ";"),
    ("pipe", "|"),
    ("backtick", "`"),
    ("dollar-paren", "$("),
    ("dotdot", "../"),
    ("amp-hash", "&#"),
    ("backslash-u", "\\u"),
    ("percent", "%"),
    ("tag-attr", "<a on"),
    ("script-word", "script "),
    ("union", "union select "),
    ("words", "cat ls id "),
    ("hash", "#"),
    ("dash-dash", "--"),
    ("jndi", "${jndi:"),
    ("php-open", "<?php "),
    ("eq", "a="),
    ("colon", "x:"),
    ("newline", "\r\n"),
    ("escaped-newline", "\\r\\n"),
    // A URL scheme before every colon (each colon's authority was looked ahead 300 bytes).
    ("scheme", "ab:"),
    // An ERB tag with a backtick (each tag's code was searched for `%>` and backticks).
    ("erb-tick", "<%`"),
    // Casts: `::` runs (a type name was collected into a new String per cast).
    ("pg-cast", "a::"),
    // Every trigger byte at once, so no detector can skip the value for lack of one.
    ("punct-mix", "${<%#(%'\"`;|:@/*\\&"),
    // Runs of escapes: every byte is decoding work before any detector reads the value (a
    // percent escape of `<`, of `%` itself (a second round), IIS `%u`, HTML named and numeric
    // entities, JavaScript `\x`, and backslash pairs).
    ("percent-lt", "%3c"),
    ("percent-25", "%253c"),
    ("percent-u", "%u003c"),
    ("entity-lt", "&lt;"),
    ("entity-hex", "&#x3c;"),
    ("backslash-x", "\\x3c"),
    ("backslashes", "\\\\"),
    // A base64-looking run (generic decodes base64 values looking for Node's serialisation
    // marker): `_$$ND_FUNC$$_` encoded, repeated.
    ("base64", "XyQkTkRfRlVOQyQkXw"),
    // A chain of JavaScript sinks as one dotted name: each sink's tagged-template check
    // looked back over the whole chain before it.
    ("sink-chain", "alert."),
];

/// How a generated payload is carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wrap {
    /// `text/plain` body.
    Text,
    /// One JSON string value.
    Json,
}

impl Wrap {
    /// Every wrapping.
    pub const ALL: [Wrap; 2] = [Wrap::Text, Wrap::Json];

    /// Short name.
    pub fn name(self) -> &'static str {
        match self {
            Wrap::Text => "text",
            Wrap::Json => "json",
        }
    }

    /// `(content-type, body)` of about `size` bytes made of `unit`.
    pub fn body(self, unit: &str, size: usize) -> (&'static str, Vec<u8>) {
        match self {
            Wrap::Text => ("text/plain", repeat(unit, size).into_bytes()),
            Wrap::Json => {
                // Sized after JSON escaping (`\r\n` takes 4 bytes), so the body is at most
                // `size` bytes (the default body limit is 64 KiB: the document stays whole).
                let escaped = serde_json::to_string(unit).unwrap_or_default();
                let per_unit = escaped.len().saturating_sub(2).max(1);
                // `{"a":`, the string's two quotes and `}`: 8 bytes. (It said 7 once: the 64 KiB
                // document was one byte over the body limit, so it was truncated and scanned
                // as text while the 4 KiB one was scanned as JSON, and the linear-time test
                // compared two different paths.)
                let units = size.saturating_sub(8) / per_unit;
                let s =
                    serde_json::to_string(&repeat(unit, units * unit.len())).unwrap_or_default();
                let body = format!("{{\"a\":{s}}}");
                ("application/json", body.into_bytes())
            }
        }
    }
}

/// `unit` repeated to `size` bytes (cut at the last whole unit).
pub fn repeat(unit: &str, size: usize) -> String {
    unit.repeat(size / unit.len().max(1))
}

/// A structured hostile body: `(content-type, body)` of at most `size` bytes.
pub type Build = fn(usize) -> (&'static str, Vec<u8>);

/// `(name, carrier, build)`: bodies whose hostile part is the document's structure, each
/// at the edge of the limit that bounds it (the default [`Limits`]), so that nothing is cut
/// short by a blocking limit before the detectors run, unless the name says `past`.
pub const DOCUMENTS: &[(&str, &str, Build)] = &[
    // A JSON string holding a JSON document (leaves of documents carried as values are
    // inspected too): as many levels as the nested allowance lets through, the innermost
    // leaf a `${jndi:` run, so each level's value holds the whole run again.
    ("nested-jndi", "json", nested_jndi),
    // The same with every trigger byte: its quotes and backslashes double at each level.
    ("nested-punct", "json", nested_punct),
    // Objects `{"a":{"a":...}}` as deep as `limits.json_depth` allows, side by side up to
    // `limits.body_values`, each innermost leaf a `punct-mix` run.
    ("deep-object", "json", deep_object),
    // The same with arrays `[[[...]]]`.
    ("deep-array", "json", deep_array),
    // As many one-entry values as `limits.body_values` allows, each just past every gate
    // (one `punct-mix` unit): the per-value cost of every detector.
    ("short-values", "json", short_values),
    // `limits.args` form arguments sharing the body, each a run of trigger bytes.
    ("form-args", "form", form_args),
    // `limits.args` multipart parts sharing the body, each a JSON document (inspected as
    // text and its leaf again) holding a `punct-mix` run.
    ("multipart-parts", "multipart", multipart_parts),
    // Parts of one byte each, past `limits.args`: the parser's cost per part.
    ("multipart-tiny-past", "multipart", multipart_tiny),
    // One element with as many attributes as `limits.body_values` allows, each a run of
    // trigger bytes.
    ("xml-attrs", "xml", xml_attrs),
    // One-byte attributes past `limits.body_values`: the scanner's cost per attribute.
    ("xml-attrs-tiny-past", "xml", xml_attrs_tiny),
];

/// The boundary of the multipart documents.
const BOUNDARY: &str = "hostileboundary";
const MULTIPART: &str = "multipart/form-data; boundary=hostileboundary";

/// The trigger bytes of `punct-mix` that can stand in a form value, an XML attribute and a
/// multipart part without ending it (no `&`, `=`, `"`, `-`).
const VALUE_MIX: &str = "${<%#(%'`;|:@/*\\";

/// The largest `n` for which `build(n)` is at most `size` bytes (`build` grows with `n`),
/// at least 1.
fn fit(size: usize, build: impl Fn(usize) -> Vec<u8>) -> Vec<u8> {
    let one = build(1).len();
    let per = build(2).len().saturating_sub(one).max(1);
    let mut n = (size.saturating_sub(one) / per + 1).max(1);
    // Growth is linear in `n` for every builder here; the loop only guards the estimate.
    while n > 1 && build(n).len() > size {
        n -= 1;
    }
    build(n)
}

/// How many items of at least `min_len` bytes a body of `size` holds in half its bytes (the
/// rest grows the items), at most `limit`, at least 1.
fn items(limit: u32, size: usize, min_len: usize) -> usize {
    (limit as usize).min(size / 2 / min_len.max(1)).max(1)
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// `levels` JSON documents, each the string value of the next, the innermost holding `leaf`.
fn nested(leaf: &str, levels: u32) -> String {
    let mut doc = format!("{{\"a\":{}}}", json_string(leaf));
    for _ in 1..levels {
        doc = format!("{{\"a\":{}}}", json_string(&doc));
    }
    doc
}

/// Body levels the nested documents get: the body, then the one document its string carries.
/// A document inside that one would have its leaves inspected past the nested allowance (the
/// leaves of documents carried as values are at most as long as the outermost carrying value:
/// one more level inspects the same bytes again), which is reported and, by default, blocks.
fn nested_levels() -> u32 {
    2
}

fn nested_jndi(size: usize) -> (&'static str, Vec<u8>) {
    let body = fit(size, |n| {
        nested(&"${jndi:".repeat(n), nested_levels()).into_bytes()
    });
    ("application/json", body)
}

fn nested_punct(size: usize) -> (&'static str, Vec<u8>) {
    let unit = "${<%#(%'\"`;|:@/*\\&";
    let body = fit(size, |n| {
        nested(&unit.repeat(n), nested_levels()).into_bytes()
    });
    ("application/json", body)
}

/// Chains `open`/`close` `depth` deep around a string leaf, side by side in one array, as
/// many as `limits.body_values` lets through (each level is a value) and half the body
/// holds, the leaves sharing the rest.
fn deep(size: usize, open: &str, close: &str) -> Vec<u8> {
    let limits = Limits::default();
    // The outer array is one level: chains `json_depth - 1` deep put the leaves at the limit.
    let depth = limits.json_depth.max.saturating_sub(1) as usize;
    // Structure takes at most half the body: the rest is the leaves.
    let per_chain = depth * (open.len() + close.len()) + 3;
    let chains = (limits.body_values.max as usize / (depth + 1))
        .min(size / 2 / per_chain)
        .max(1);
    fit(size, |n| {
        let leaf = json_string(&"${<%#(%'`;|:@/*&".repeat(n));
        let chain = format!("{}{leaf}{}", open.repeat(depth), close.repeat(depth));
        format!("[{}]", vec![chain; chains].join(",")).into_bytes()
    })
}

fn deep_object(size: usize) -> (&'static str, Vec<u8>) {
    ("application/json", deep(size, "{\"a\":", "}"))
}

fn deep_array(size: usize) -> (&'static str, Vec<u8>) {
    ("application/json", deep(size, "[", "]"))
}

fn short_values(size: usize) -> (&'static str, Vec<u8>) {
    let max = Limits::default().body_values.max as usize;
    let value = json_string("${<%#(%'\"`;|:@/*\\&");
    // `[` and `]`, and a comma between values.
    let n = (size.saturating_sub(2) / (value.len() + 1)).clamp(1, max);
    let body = format!("[{}]", vec![value; n].join(","));
    ("application/json", body.into_bytes())
}

fn form_args(size: usize) -> (&'static str, Vec<u8>) {
    let args = items(Limits::default().args.max, size, 2 + VALUE_MIX.len());
    let body = fit(size, |n| {
        let pair = format!("a={}", VALUE_MIX.repeat(n));
        vec![pair; args].join("&").into_bytes()
    });
    ("application/x-www-form-urlencoded", body)
}

fn part(value: &str) -> String {
    format!("--{BOUNDARY}\r\ncontent-disposition: form-data; name=\"a\"\r\n\r\n{value}\r\n")
}

fn multipart_parts(size: usize) -> (&'static str, Vec<u8>) {
    let parts = items(
        Limits::default().args.max,
        size,
        part("").len() + 8 + VALUE_MIX.len(),
    );
    let body = fit(size, |n| {
        let doc = format!("{{\"a\":{}}}", json_string(&VALUE_MIX.repeat(n)));
        format!("{}--{BOUNDARY}--\r\n", part(&doc).repeat(parts)).into_bytes()
    });
    (MULTIPART, body)
}

fn multipart_tiny(size: usize) -> (&'static str, Vec<u8>) {
    let body = fit(size, |n| {
        format!("{}--{BOUNDARY}--\r\n", part("'").repeat(n)).into_bytes()
    });
    (MULTIPART, body)
}

fn xml_attrs(size: usize) -> (&'static str, Vec<u8>) {
    // The element's text is one value too.
    let max = Limits::default().body_values.max.saturating_sub(1);
    let attrs = items(max, size, 5 + VALUE_MIX.len());
    let body = fit(size, |n| {
        let attr = format!(" a=\"{}\"", VALUE_MIX.repeat(n));
        format!("<r{}>x</r>", attr.repeat(attrs)).into_bytes()
    });
    ("application/xml", body)
}

fn xml_attrs_tiny(size: usize) -> (&'static str, Vec<u8>) {
    let body = fit(size, |n| {
        format!("<r{}>x</r>", " a=\"'\"".repeat(n)).into_bytes()
    });
    ("application/xml", body)
}

/// One hostile body generator in one carrier: a repeated unit ([`GENERATORS`] in a [`Wrap`])
/// or a structured document ([`DOCUMENTS`]).
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// Generator name.
    pub name: &'static str,
    /// Carrier name (`text`, `json`, `form`, `multipart`, `xml`).
    pub carrier: &'static str,
    kind: CaseKind,
}

#[derive(Debug, Clone, Copy)]
enum CaseKind {
    Unit(&'static str, Wrap),
    Document(Build),
}

impl Case {
    /// `(content-type, body)` of at most `size` bytes.
    pub fn body(&self, size: usize) -> (&'static str, Vec<u8>) {
        match self.kind {
            CaseKind::Unit(unit, wrap) => wrap.body(unit, size),
            CaseKind::Document(build) => build(size),
        }
    }
}

/// Every generator in every carrier: [`GENERATORS`] as text and as JSON, then
/// [`DOCUMENTS`].
pub fn cases() -> Vec<Case> {
    let units = GENERATORS.iter().flat_map(|&(name, unit)| {
        Wrap::ALL.into_iter().map(move |wrap| Case {
            name,
            carrier: wrap.name(),
            kind: CaseKind::Unit(unit, wrap),
        })
    });
    let docs = DOCUMENTS.iter().map(|&(name, carrier, build)| Case {
        name,
        carrier,
        kind: CaseKind::Document(build),
    });
    units.chain(docs).collect()
}

/// The case named `name` carried as `carrier`.
pub fn case(name: &str, carrier: &str) -> Option<Case> {
    cases()
        .into_iter()
        .find(|c| c.name == name && c.carrier == carrier)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every generated body fits the size asked for, so a 64 KiB body stays within the default
    /// body limit and is inspected whole, on the same path as the 4 KiB one.
    #[test]
    fn bodies_fit_the_size_asked_for() {
        for case in cases() {
            for size in [4 * 1024, 64 * 1024] {
                let (_, body) = case.body(size);
                assert!(
                    body.len() <= size,
                    "{}/{}: {} bytes for {size}",
                    case.name,
                    case.carrier,
                    body.len()
                );
            }
        }
    }

    fn limits_hit(ct: &str, body: &[u8]) -> Vec<crate::model::LimitKind> {
        let engine = crate::Config::default()
            .compile()
            .unwrap_or_else(|e| panic!("{e}"));
        let headers = vec![
            ("host".to_string(), "example.com".to_string()),
            ("content-type".to_string(), ct.to_string()),
        ];
        let req = crate::Request::new("POST", "/upload")
            .with_headers(&headers)
            .with_body(body);
        engine.inspect(&req).limit_hits
    }

    /// Each document is inspected in full by the detectors at 64 KiB (no limit reached: a
    /// blocking limit would skip them, and the body would measure nothing but extraction),
    /// except the `-past` ones, which are past the limit they test.
    #[test]
    fn documents_are_at_the_edge_of_their_limits() {
        for (name, _, build) in DOCUMENTS {
            let (ct, body) = build(64 * 1024);
            let hits = limits_hit(ct, &body);
            assert_eq!(
                !hits.is_empty(),
                name.ends_with("-past"),
                "{name}: limits {hits:?}"
            );
        }
    }

    /// ... and at the edge: one more level of nesting, or of depth, is past the limit.
    #[test]
    fn one_more_level_is_past_the_limit() {
        use crate::model::LimitKind;
        // A leaf longer than the wrapping of a level: the next level's leaves then exceed
        // the allowance (short leaves nest up to `limits.decode_rounds` levels).
        let doc = nested(&"${jndi:".repeat(64), nested_levels() + 1);
        let hits = limits_hit("application/json", doc.as_bytes());
        assert_eq!(hits, [LimitKind::DecodeRounds]);
        let depth = Limits::default().json_depth.max as usize;
        let chain = format!("[{}\"a'\"{}]", "[".repeat(depth), "]".repeat(depth));
        let hits = limits_hit("application/json", chain.as_bytes());
        assert_eq!(hits, [LimitKind::JsonDepth]);
    }
}
