//! JSON bodies: every key and every string (or number) leaf becomes an input, walked to a
//! bounded depth (serde_json itself refuses nesting past 128, so parsing is bounded too). The
//! walk borrows from the parsed document: no key or string is copied here.

use serde_json::Value;

/// One thing [`walk`] found.
#[derive(Debug, Clone, Copy)]
pub struct Item<'v> {
    /// The member name the value belongs to (the nearest enclosing key; `""` at the top).
    pub key: &'v str,
    /// The text to inspect: a key, a string leaf or a number leaf; `None` for other values
    /// (objects, arrays, booleans, null), which still count as arguments when they fill a slot.
    pub text: Option<&'v str>,
    /// `text` is a member name.
    pub is_key: bool,
    /// This fills one argument slot: an object member (reported with its key) or an array
    /// element. Callers count these against `limits.args`.
    pub counts_as_arg: bool,
}

/// Calls `visit` for every object member (key first, with `counts_as_arg`), every array
/// element and every string or number leaf, in document order; stops when `visit` returns
/// false. Returns true when values deeper than `max_depth` were skipped.
pub fn walk<'v>(value: &'v Value, max_depth: u32, visit: &mut dyn FnMut(Item<'_>) -> bool) -> bool {
    let mut truncated = false;
    // (value, key, depth, is an array element)
    let mut stack: Vec<(&'v Value, &'v str, u32, bool)> = vec![(value, "", 0, false)];
    let mut num = String::new();
    while let Some((v, key, depth, element)) = stack.pop() {
        if depth > max_depth {
            truncated = true;
            continue;
        }
        if element
            && !visit(Item {
                key,
                text: None,
                is_key: false,
                counts_as_arg: true,
            })
        {
            return truncated;
        }
        let text = match v {
            Value::String(s) => Some(s.as_str()),
            Value::Number(n) => {
                // Formatted into a reused scratch buffer; the visitor copies what it keeps.
                num.clear();
                use std::fmt::Write;
                let _ = write!(num, "{n}");
                Some(num.as_str())
            }
            Value::Object(map) => {
                for (k, child) in map.iter().rev() {
                    stack.push((child, k.as_str(), depth + 1, false));
                }
                for k in map.keys() {
                    if !visit(Item {
                        key: k,
                        text: Some(k),
                        is_key: true,
                        counts_as_arg: true,
                    }) {
                        return truncated;
                    }
                }
                None
            }
            Value::Array(items) => {
                for child in items.iter().rev() {
                    stack.push((child, key, depth + 1, true));
                }
                None
            }
            Value::Bool(_) | Value::Null => None,
        };
        if let Some(t) = text {
            if !visit(Item {
                key,
                text: Some(t),
                is_key: false,
                counts_as_arg: false,
            }) {
                return truncated;
            }
        }
    }
    truncated
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(json: &str, depth: u32) -> (Vec<String>, bool) {
        let v: Value = serde_json::from_str(json).unwrap();
        let mut seen = Vec::new();
        let cut = walk(&v, depth, &mut |i| {
            seen.push(format!(
                "{}={}:{}{}",
                i.key,
                i.text.unwrap_or("-"),
                if i.is_key { "k" } else { "v" },
                if i.counts_as_arg { "+" } else { "" }
            ));
            true
        });
        (seen, cut)
    }

    #[test]
    fn visits_keys_leaves_and_slots() {
        let (seen, cut) = seen(r#"{"a": ["x", {"b": "y"}], "n": 1}"#, 8);
        assert!(!cut);
        for want in [
            "a=a:k+", "n=n:k+", "a=-:v+", "a=x:v", "b=b:k+", "b=y:v", "n=1:v",
        ] {
            assert!(seen.contains(&want.to_string()), "{want} in {seen:?}");
        }
        // Two members, two array elements, one nested member: five argument slots.
        assert_eq!(seen.iter().filter(|s| s.ends_with('+')).count(), 5);
    }

    #[test]
    fn depth_is_bounded() {
        let (seen, cut) = seen(r#"[[[[["deep"]]]]]"#, 2);
        assert!(cut);
        assert!(!seen.iter().any(|s| s.contains("deep")));
    }
}
