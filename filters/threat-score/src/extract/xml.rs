//! A scanner for XML bodies that yields element text and attribute values (the places CRS
//! inspects as `XML:/*`), without building a tree or resolving entities beyond the decoder's.

use crate::detect::Lit as _;
use crate::detect::Outlined as _;
/// One value found in the document, with the element or attribute name it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlValue {
    /// Element or attribute name.
    pub name: String,
    /// Raw text (entities still encoded; the decoder handles them).
    pub value: String,
}

/// Extracts text nodes and attribute values, at most `max` of them.
pub fn values(doc: &str, max: usize) -> Vec<XmlValue> {
    let mut out = Vec::new();
    let mut rest = doc;
    let mut current = String::new();
    while !rest.is_empty() && out.len() < max {
        match rest.find_char('<') {
            Some(0) => {}
            Some(pos) => {
                let text = rest.get(..pos).unwrap_or_default();
                if !text.trim().is_empty() {
                    out.push(XmlValue {
                        name: current.clone(),
                        value: text.to_string(),
                    });
                }
                rest = rest.get(pos..).unwrap_or_default();
                continue;
            }
            None => {
                if !rest.trim().is_empty() {
                    out.push(XmlValue {
                        name: current.clone(),
                        value: rest.to_string(),
                    });
                }
                break;
            }
        }
        // At a '<'.
        if let Some(body) = rest.strip_prefix("<![CDATA[") {
            let end = body.find_lit("]]>").unwrap_or(body.len());
            out.push(XmlValue {
                name: current.clone(),
                value: body.get(..end).unwrap_or_default().to_string(),
            });
            rest = body.get(end + 3..).unwrap_or_default();
            continue;
        }
        if let Some(body) = rest.strip_prefix("<!--") {
            let end = body.find_lit("-->").map_or(body.len(), |e| e + 3);
            rest = body.get(end..).unwrap_or_default();
            continue;
        }
        let end = tag_end(rest);
        let tag = rest.get(1..end).unwrap_or_default();
        rest = rest.get(end + 1..).unwrap_or_default();
        if tag.starts_with('?') || tag.starts_with('!') || tag.starts_with('/') {
            continue;
        }
        let name_len = tag
            .find(|c: char| c.is_whitespace() || c == '/' || c == '>')
            .unwrap_or(tag.len());
        current = tag.get(..name_len).unwrap_or_default().to_string();
        attributes(tag.get(name_len..).unwrap_or_default(), &mut out, max);
    }
    out
}

/// Index of the `>` closing the tag at the start of `s`, skipping quoted attribute values.
fn tag_end(s: &str) -> usize {
    let mut quote = None;
    for (i, c) in s.char_indices().skip(1) {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => return i,
            _ => {}
        }
    }
    s.len()
}

fn attributes(mut s: &str, out: &mut Vec<XmlValue>, max: usize) {
    while let Some(eq) = s.find_char('=') {
        if out.len() >= max {
            return;
        }
        let name = s.get(..eq).unwrap_or_default().trim().to_string();
        let after = s.get(eq + 1..).unwrap_or_default().trim_start();
        let Some(q) = after.first_char().filter(|c| *c == '"' || *c == '\'') else {
            s = after;
            continue;
        };
        let body = after.get(1..).unwrap_or_default();
        let end = body.find(q).unwrap_or(body.len());
        out.push(XmlValue {
            name,
            value: body.get(..end).unwrap_or_default().to_string(),
        });
        s = body.get(end + 1..).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_attributes() {
        let v = values(
            r#"<?xml version="1.0"?><root><a probe="x &lt;y"></a><b>text</b><![CDATA[<s>]]></root>"#,
            10,
        );
        let pairs: Vec<_> = v
            .iter()
            .map(|x| (x.name.as_str(), x.value.as_str()))
            .collect();
        assert!(pairs.contains(&("probe", "x &lt;y")));
        assert!(pairs.contains(&("b", "text")));
        assert!(pairs.contains(&("b", "<s>")));
    }

    #[test]
    fn unterminated_input_is_fine() {
        let _ = values("<a b=\"unterminated", 10);
        let _ = values("<<<<>>>", 10);
        let _ = values("<![CDATA[", 10);
    }
}
