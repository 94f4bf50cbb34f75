//! JSON bodies: every key and every string value becomes an argument, walked to a bounded
//! depth (serde_json itself refuses nesting past 128, so parsing is bounded too).

use serde_json::Value;

/// Calls `visit(key, value, is_key)` for keys and string (or numeric) leaves; returns true when
/// values deeper than `max_depth` were skipped.
pub fn walk(
    value: &Value,
    max_depth: u32,
    visit: &mut dyn FnMut(&str, &str, bool) -> bool,
) -> bool {
    let mut truncated = false;
    let mut stack: Vec<(&Value, &str, u32)> = vec![(value, "", 0)];
    while let Some((v, key, depth)) = stack.pop() {
        if depth > max_depth {
            truncated = true;
            continue;
        }
        match v {
            Value::String(s) => {
                if !visit(key, s, false) {
                    return truncated;
                }
            }
            Value::Number(n) => {
                let s = n.to_string();
                if !visit(key, &s, false) {
                    return truncated;
                }
            }
            Value::Object(map) => {
                for (k, child) in map.iter().rev() {
                    stack.push((child, k.as_str(), depth + 1));
                }
                for k in map.keys() {
                    if !visit(k, k, true) {
                        return truncated;
                    }
                }
            }
            Value::Array(items) => {
                for child in items.iter().rev() {
                    stack.push((child, key, depth + 1));
                }
            }
            Value::Bool(_) | Value::Null => {}
        }
    }
    truncated
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visits_keys_and_leaves() {
        let v: Value = serde_json::from_str(r#"{"a": ["x", {"b": "y"}], "n": 1}"#).unwrap();
        let mut seen = Vec::new();
        let cut = walk(&v, 8, &mut |k, s, is_key| {
            seen.push(format!("{k}={s}:{is_key}"));
            true
        });
        assert!(!cut);
        assert!(seen.contains(&"a=x:false".to_string()));
        assert!(seen.contains(&"b=y:false".to_string()));
        assert!(seen.contains(&"b=b:true".to_string()));
        assert!(seen.contains(&"n=1:false".to_string()));
    }

    #[test]
    fn depth_is_bounded() {
        let v: Value = serde_json::from_str(r#"[[[[["deep"]]]]]"#).unwrap();
        let mut n = 0;
        assert!(walk(&v, 2, &mut |_, _, _| {
            n += 1;
            true
        }));
        assert_eq!(n, 0);
    }
}
