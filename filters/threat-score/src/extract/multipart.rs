//! A tolerant multipart/form-data parser: it extracts part names, file names and values, and
//! records the irregularities that CRS treats as evasion attempts (rule family 922/920120)
//! instead of failing on them.

use crate::detect::Outlined as _;

/// One part of a multipart body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Part {
    /// `name` from Content-Disposition.
    pub name: String,
    /// `filename` from Content-Disposition, if any.
    pub filename: Option<String>,
    /// The part's own Content-Type, lowercase.
    pub content_type: Option<String>,
    /// The part carried a Content-Transfer-Encoding header (deprecated by RFC 7578).
    pub transfer_encoding: bool,
    /// That header named an identity encoding (`7bit`, `8bit`, `binary`, RFC 2045 6.1): the
    /// content is as sent, nothing is decoded before the application reads it.
    pub identity_encoding: bool,
    /// The body of the part (lossy UTF-8).
    pub value: String,
}

/// The parsed body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Multipart {
    /// Parts in order.
    pub parts: Vec<Part>,
    /// The boundary never appeared, or a part had no header/body separator.
    pub malformed: bool,
}

/// Extracts `boundary` from a Content-Type header value.
pub fn boundary(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim().eq_ignore_ascii_case("boundary")).then(|| v.trim().trim_set(&['"']).to_string())
    })
}

/// Parses `body` with `boundary`, keeping at most `max_parts` parts.
///
/// A part that is itself `multipart/mixed` (an OData `$batch` change set, RFC 2046 5.1.1;
/// the old way to send several files under one form field) is read part by part in its
/// place, one level deep: its parts are the application's values, as the outer ones are.
/// Deeper nesting stays one text value.
pub fn parse(body: &[u8], boundary: &str, max_parts: usize) -> Multipart {
    let mut out = Multipart::default();
    let text = String::from_utf8_lossy(body);
    parse_into(&text, boundary, max_parts, 1, &mut out);
    out
}

fn parse_into(text: &str, boundary: &str, max_parts: usize, nest: u8, out: &mut Multipart) {
    if boundary.is_empty() {
        out.malformed = true;
        return;
    }
    let delim = format!("--{boundary}");
    let mut sections = text.split(delim.as_str());
    if sections.next().is_none() {
        out.malformed = true;
        return;
    }
    let mut saw_any = false;
    for section in sections {
        saw_any = true;
        if section.starts_with("--") {
            break;
        }
        if out.parts.len() >= max_parts {
            break;
        }
        let section = section
            .strip_prefix("\r\n")
            .or_else(|| section.strip_prefix('\n'))
            .unwrap_or(section);
        let (head, value) = match section
            .split_once("\r\n\r\n")
            .or_else(|| section.split_once("\n\n"))
        {
            Some(hv) => hv,
            None => {
                out.malformed = true;
                (section, "")
            }
        };
        let value = value
            .strip_suffix("\r\n")
            .or_else(|| value.strip_suffix('\n'))
            .unwrap_or(value);
        let mut part = Part {
            value: value.to_string(),
            ..Part::default()
        };
        for line in head.lines() {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let k = k.trim().ascii_lower();
            match k.as_str() {
                "content-disposition" => {
                    for (pk, pv) in disposition_params(v) {
                        match pk.as_str() {
                            "name" => part.name = pv,
                            "filename" | "filename*" => part.filename = Some(pv),
                            _ => {}
                        }
                    }
                }
                "content-type" => part.content_type = Some(v.trim().ascii_lower()),
                "content-transfer-encoding" => {
                    part.transfer_encoding = true;
                    part.identity_encoding = ["7bit", "8bit", "binary"]
                        .iter()
                        .any(|e| v.trim().eq_ignore_ascii_case(e));
                }
                _ => {}
            }
        }
        let inner = part
            .content_type
            .as_deref()
            .filter(|ct| nest > 0 && ct.starts_with("multipart/mixed"))
            .and_then(self::boundary);
        match inner {
            Some(b) => parse_into(value, &b, max_parts, nest - 1, out),
            None => out.parts.push(part),
        }
    }
    if !saw_any {
        out.malformed = true;
    }
}

/// An HTTP request message carried as a part of type `application/http` (RFC 9112 10.1;
/// each request of an OData `$batch`): the request line, its header fields and its content.
#[derive(Debug, PartialEq, Eq)]
pub struct Message<'a> {
    /// The request target as written (`Customers('ALFKI')`, `/orders?$top=5`).
    pub target: &'a str,
    /// The header section, lines checked by [`http_message`].
    head: &'a str,
    /// The content after the empty line (may be empty).
    pub body: &'a str,
}

impl<'a> Message<'a> {
    /// Header fields in order, name and value trimmed.
    pub fn fields(&self) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.head
            .split('\n')
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k, v.trim()))
    }
}

/// A header field name: an RFC 9110 token.
fn token(w: &str) -> bool {
    !w.is_empty()
        && w.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c))
}

/// Reads `text` as a request message: `METHOD SP target SP HTTP/d.d`, header fields (a token,
/// `:`, a value) up to an empty line, then the content. `None` when it is not one (another
/// line first, a header line without a name): the part is then one text value, and a request
/// line inside it counts as smuggled, as in any other value.
pub fn http_message(text: &str) -> Option<Message<'_>> {
    let (line, rest) = split_line(text)?;
    let mut words = line.split(' ');
    let (method, target, version) = (words.next()?, words.next()?, words.next()?);
    let version_ok = matches!(
        version.as_bytes(),
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit()
    );
    if words.next().is_some() || !token(method) || target.is_empty() || !version_ok {
        return None;
    }
    // Field lines up to the first empty line (or the end of the text).
    let mut tail = rest;
    loop {
        let (line, after) = split_line(tail).unwrap_or((tail, ""));
        if line.is_empty() {
            let head = rest.get(..rest.len() - tail.len())?;
            return Some(Message {
                target,
                head,
                body: after,
            });
        }
        let (name, _) = line.split_once(':')?;
        if !token(name) {
            return None;
        }
        tail = after;
    }
}

/// The first line of `text` (without its CR LF or LF) and the rest; `None` without a line end.
fn split_line(text: &str) -> Option<(&str, &str)> {
    let nl = text.find('\n')?;
    let line = text.get(..nl)?;
    Some((line.strip_suffix('\r').unwrap_or(line), text.get(nl + 1..)?))
}

/// Splits `form-data; name="a"; filename="b"` into lowercase keys and unquoted values.
/// Quoted values may contain `;`.
fn disposition_params(v: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = v;
    while let Some(eq) = rest.find('=') {
        let key = rest
            .get(..eq)
            .unwrap_or_default()
            .rsplit(';')
            .next()
            .unwrap_or_default()
            .trim()
            .ascii_lower();
        let after = rest.get(eq + 1..).unwrap_or_default().trim_start();
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            match q.find('"') {
                Some(end) => (
                    q.get(..end).unwrap_or_default(),
                    q.get(end + 1..).unwrap_or_default(),
                ),
                None => (q, ""),
            }
        } else {
            match after.find(';') {
                Some(end) => (
                    after.get(..end).unwrap_or_default().trim(),
                    after.get(end..).unwrap_or_default(),
                ),
                None => (after.trim(), ""),
            }
        };
        out.push((key, value.to_string()));
        rest = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fields_and_files() {
        let body = "--XX\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nhello\r\n--XX\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x;y.php\"\r\nContent-Type: text/plain; charset=utf-7\r\n\r\ndata\r\n--XX--\r\n";
        let m = parse(body.as_bytes(), "XX", 10);
        assert_eq!(m.parts.len(), 2);
        assert_eq!(m.parts[0].name, "a");
        assert_eq!(m.parts[0].value, "hello");
        assert_eq!(m.parts[1].filename.as_deref(), Some("x;y.php"));
        assert!(m.parts[1]
            .content_type
            .as_deref()
            .unwrap()
            .contains("utf-7"));
    }

    #[test]
    fn boundary_from_header() {
        assert_eq!(
            boundary("multipart/form-data; boundary=\"abc\"").as_deref(),
            Some("abc")
        );
        assert_eq!(boundary("multipart/form-data"), None);
    }

    #[test]
    fn change_sets_are_read_part_by_part_one_level_deep() {
        let body = "--b\r\nContent-Type: application/http\r\n\r\nGET /a HTTP/1.1\r\n\r\n\r\n--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\nPOST /b HTTP/1.1\r\n\r\n{}\r\n--c\r\nContent-Type: multipart/mixed; boundary=d\r\n\r\n--d\r\n\r\ndeep\r\n--d--\r\n--c--\r\n--b--\r\n";
        let m = parse(body.as_bytes(), "b", 10);
        assert!(!m.malformed);
        assert_eq!(m.parts.len(), 3);
        assert_eq!(m.parts[1].value, "POST /b HTTP/1.1\r\n\r\n{}");
        assert!(m.parts[1].transfer_encoding && m.parts[1].identity_encoding);
        // A change set inside a change set stays one text value.
        assert!(m.parts[2].value.contains("--d\r\n"));
        // The part limit counts the change set's parts.
        assert_eq!(parse(body.as_bytes(), "b", 2).parts.len(), 2);
    }

    #[test]
    fn request_messages_and_what_is_not_one() {
        let m = http_message("PATCH Orders('1') HTTP/1.1\r\nContent-Type: application/json\r\nIf-Match: *\r\n\r\n{\"a\":1}")
            .unwrap();
        assert_eq!(m.target, "Orders('1')");
        assert_eq!(
            m.fields().collect::<Vec<_>>(),
            vec![("Content-Type", "application/json"), ("If-Match", "*")]
        );
        assert_eq!(m.body, "{\"a\":1}");
        let m = http_message("GET /x?a=1 HTTP/1.1\nAccept: */*").unwrap();
        assert_eq!((m.target, m.body, m.fields().count()), ("/x?a=1", "", 1));
        for text in [
            "GET /x HTTP/1.1",
            "GET /x y HTTP/1.1\r\n\r\n",
            "GET /x HTTP/1\r\n\r\n",
            "GET  HTTP/1.1\r\n\r\n",
            "G(T /x HTTP/1.1\r\n\r\n",
            "GET /x HTTP/1.1\r\nno colon here\r\n\r\n",
            "GET /x HTTP/1.1\r\n folded: x\r\n\r\n",
            "hello\r\n\r\n",
        ] {
            assert_eq!(http_message(text), None, "{text:?}");
        }
    }

    #[test]
    fn garbage_is_malformed_not_fatal() {
        assert!(parse(b"no boundary here", "XX", 10).parts.is_empty());
        let m = parse(b"--XX\nno separator", "XX", 10);
        assert!(m.malformed);
    }
}
