//! Hostile input generators shared by the linear-time test, the `hostile` example and the
//! Envoy measurement: repeated tokens that made earlier versions of the engine quadratic.

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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every generated body fits the size asked for, so a 64 KiB body stays within the default
    /// body limit and is inspected whole, on the same path as the 4 KiB one.
    #[test]
    fn bodies_fit_the_size_asked_for() {
        for (name, unit) in GENERATORS {
            for wrap in Wrap::ALL {
                for size in [4 * 1024, 64 * 1024] {
                    let (_, body) = wrap.body(unit, size);
                    assert!(
                        body.len() <= size,
                        "{name}/{}: {} bytes for {size}",
                        wrap.name(),
                        body.len()
                    );
                }
            }
        }
    }
}
