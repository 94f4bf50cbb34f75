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
pub fn parse(body: &[u8], boundary: &str, max_parts: usize) -> Multipart {
    let mut out = Multipart::default();
    if boundary.is_empty() {
        out.malformed = true;
        return out;
    }
    let text = String::from_utf8_lossy(body);
    let delim = format!("--{boundary}");
    let mut sections = text.split(delim.as_str());
    if sections.next().is_none() {
        out.malformed = true;
        return out;
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
                "content-transfer-encoding" => part.transfer_encoding = true,
                _ => {}
            }
        }
        out.parts.push(part);
    }
    if !saw_any {
        out.malformed = true;
    }
    out
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
    fn garbage_is_malformed_not_fatal() {
        assert!(parse(b"no boundary here", "XX", 10).parts.is_empty());
        let m = parse(b"--XX\nno separator", "XX", 10);
        assert!(m.malformed);
    }
}
