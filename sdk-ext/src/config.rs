//! Typed JSON configuration.
//!
//! A filter's configuration types implement [`FromJson`]: each reads itself from the parsed
//! document ([`crate::json`]) through a [`Node`], which knows its JSON path, so every error
//! names the field (`rules[2].match.paths[0].regex`) and the reason, and the line in Envoy's log
//! is enough to fix the manifest. Objects name their members once, in [`read_object!`] (which
//! builds the [`Node::object`] list from them), so unknown ones are refused.
//! Filters compile the result into runtime form once, in `on_configure`.
//!
//! ```
//! use sdk_ext::config::{parse_json, ConfigError, FromJson, Node};
//!
//! struct Deny {
//!     status: u16,
//!     message: String,
//! }
//!
//! impl FromJson for Deny {
//!     fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
//!         // `status` and `message` only: any other member is refused.
//!         sdk_ext::read_object!(node => Deny {
//!             status: or("status", 403),
//!             message: or_else("message", || "denied".into()),
//!         })
//!     }
//! }
//!
//! let deny = parse_json::<Deny>(br#"{"message": "no"}"#).unwrap();
//! assert_eq!((deny.status, deny.message.as_str()), (403, "no"));
//! let err = parse_json::<Deny>(br#"{"status": "x"}"#).err().unwrap();
//! assert_eq!(
//!     err.to_string(),
//!     "invalid configuration at `status`: invalid type: string `x`, expected u16"
//! );
//! ```
//!
//! Why not `serde` derives: measured, the derived deserializers (a monomorphised visitor per
//! struct and field type, each struct with a `visit_seq` too) and serde_json's error machinery
//! were ~90 KB of code in policy and router and ~180 KB in the suite, and module size is
//! cold-start time (bench/README.md, "Module size and cold start"). One parser and this reader
//! serve every filter. Messages follow serde's (`unknown field`, `missing field`, `invalid
//! type`, `unknown variant`), with the path in front.

pub use crate::json::Json;
use std::collections::BTreeMap;
use std::fmt;

/// A configuration error: where (JSON path, `$` for the document itself) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// JSON path of the offending field, e.g. `deny.status` or `rules[0].paths[1].regex`.
    pub path: String,
    /// Human-readable reason.
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `text()`, not `write!` with `{}` (`str`'s `Display` pads: `core::fmt`'s largest
        // function, compiled by V8 in every module that links it).
        f.write_str(&self.text())
    }
}

impl ConfigError {
    /// The error as its `Display` writes it, built without `core::fmt` (for the glue's log
    /// lines).
    pub fn text(&self) -> String {
        cat(&[
            "invalid configuration at `",
            &self.path,
            "`: ",
            &self.reason,
        ])
    }

    /// An error at `path` (use `$` for the whole document).
    pub fn new(path: impl Into<String>, reason: impl fmt::Display) -> Self {
        Self {
            path: path.into(),
            reason: reason.to_string(),
        }
    }

    /// Prefix the path with a parent field, so nested validators can report relative paths:
    /// `ConfigError::new("regex", ..).within("rules[0].path")` has path `rules[0].path.regex`.
    #[must_use]
    pub fn within(mut self, parent: &str) -> Self {
        self.path = join_path(parent, &self.path);
        self
    }
}

/// Join a parent path and a child path (`a` + `b` = `a.b`, `a` + `[0]` = `a[0]`, `$` is empty).
// Every member read builds its path: plain appends, not `format!` (its machinery was most of
// policy's `on_configure` instructions).
pub fn join_path(parent: impl AsRef<str>, child: &str) -> String {
    let mut out = parent.as_ref().to_string();
    push_path(&mut out, child);
    out
}

/// [`join_path`] in place: `out` becomes `out` joined with `child`. Pushes, not `concat`
/// (its generic join was one more function for V8 to compile in every module).
fn push_path(out: &mut String, child: &str) {
    match (out.as_str(), child) {
        ("" | "$", c) => {
            out.clear();
            out.push_str(c);
        }
        (_, "" | "$") => {}
        (_, c) => {
            if !c.starts_with('[') {
                out.push('.');
            }
            out.push_str(c);
        }
    }
}

/// `parts` joined: the messages every module can produce (configuration errors, the glue's log
/// lines) are built with this one out-of-line function instead of `format!`, so a module whose
/// own code formats nothing links none of `core::fmt`'s `Display` machinery (V8 compiles every
/// function of a module at each push: bench/README.md, "Module size and cold start").
#[inline(never)]
pub fn cat(parts: &[&str]) -> String {
    let mut out = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for part in parts {
        out.push_str(part);
    }
    out
}

/// `n` in decimal, appended (without `format!`, see [`join_path`]).
pub(crate) fn push_decimal(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&digits[at..]).unwrap_or_default());
}

/// Parse `bytes` as a JSON document and read it as `T`. Empty or whitespace-only input is read
/// as `{}` so a filter whose fields all have defaults can run with no configuration at all.
pub fn parse_json<T: FromJson>(bytes: &[u8]) -> Result<T, ConfigError> {
    let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    let doc = crate::json::Document::new(crate::json::parse(text)?);
    T::from_json(&Node::root(&doc))
}

/// [`parse_json`] of a `&str`.
pub fn from_str<T: FromJson>(text: &str) -> Result<T, ConfigError> {
    parse_json(text.as_bytes())
}

/// A configuration type: reads itself from a JSON value. Errors come from the [`Node`]'s
/// helpers (or [`Node::error`]) so they carry the value's path.
pub trait FromJson: Sized {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError>;
}

/// A value of the configuration document and its JSON path.
// The path is the chain of parents and steps, written out only for an error: a `String` per
// node was an allocation per member read, and its drop in every reader (module size).
#[derive(Debug, Clone, Copy)]
pub struct Node<'a> {
    value: &'a Json,
    parent: Option<&'a Node<'a>>,
    step: Step<'a>,
}

/// How a [`Node`] is reached from its parent.
#[derive(Debug, Clone, Copy)]
enum Step<'a> {
    Root,
    Member(&'a str),
    Index(usize),
}

/// `expected `a``, `expected `a` or `b``, `expected one of `a`, `b`, `c``, as serde words it.
fn expected_one_of(names: &[&str], none: &str) -> String {
    let (lead, between) = match names {
        [] => return none.to_string(),
        [_] => ("expected ", ""),
        [_, _] => ("expected ", " or "),
        _ => ("expected one of ", ", "),
    };
    let mut out = String::from(lead);
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            out.push_str(between);
        }
        out.push('`');
        out.push_str(name);
        out.push('`');
    }
    out
}

impl<'a> Node<'a> {
    /// The document itself (path `$`).
    pub fn root(value: &'a Json) -> Self {
        Node {
            value,
            parent: None,
            step: Step::Root,
        }
    }

    /// The value.
    pub fn json(&self) -> &'a Json {
        self.value
    }

    /// The JSON path (`$` for the document).
    #[inline(never)]
    pub fn path(&self) -> String {
        let mut out = String::new();
        self.write_path(&mut out);
        if out.is_empty() {
            out.push('$');
        }
        out
    }

    /// The path, empty for the document (`a.b` = `a` joined with `b` as [`join_path`] joins).
    fn write_path(&self, out: &mut String) {
        if let Some(parent) = self.parent {
            parent.write_path(out);
        }
        match self.step {
            Step::Root => {}
            Step::Member(key) => push_path(out, key),
            Step::Index(i) => {
                out.push('[');
                push_decimal(out, i as u64);
                out.push(']');
            }
        }
    }

    /// An error about this value.
    // The helpers marked `inline(never)` run for every member read: one copy each, not one
    // inlined into every `from_json` (module size; configure time only).
    #[inline(never)]
    pub fn error(&self, reason: impl fmt::Display) -> ConfigError {
        ConfigError::new(self.path(), reason)
    }

    /// `invalid type: <what this is>, expected <expected>`.
    #[inline(never)]
    pub fn invalid_type(&self, expected: &str) -> ConfigError {
        self.error(cat(&[
            "invalid type: ",
            &self.value.describe(),
            ", expected ",
            expected,
        ]))
    }

    fn member<'s>(&'s self, key: &'s str, value: &'s Json) -> Node<'s> {
        Node {
            value,
            parent: Some(self),
            step: Step::Member(key),
        }
    }

    fn index<'s>(&'s self, i: usize, value: &'s Json) -> Node<'s> {
        Node {
            value,
            parent: Some(self),
            step: Step::Index(i),
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.value, Json::Null)
    }

    #[inline(never)]
    pub fn str(&self) -> Result<&'a str, ConfigError> {
        match self.value {
            Json::String(s) => Ok(s),
            _ => Err(self.invalid_type("a string")),
        }
    }

    pub fn bool(&self) -> Result<bool, ConfigError> {
        match self.value {
            Json::Bool(b) => Ok(*b),
            _ => Err(self.invalid_type("a boolean")),
        }
    }

    /// A non-negative integer up to `max`; `ty` names the type in errors (`u16`).
    #[inline(never)]
    pub fn uint(&self, max: u64, ty: &str) -> Result<u64, ConfigError> {
        let Json::Number(text) = self.value else {
            return Err(self.invalid_type(ty));
        };
        if !text.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
            return Err(self.invalid_type(ty));
        }
        match text.parse::<u64>() {
            Ok(n) if n <= max => Ok(n),
            _ if text
                .strip_prefix('-')
                .is_some_and(|d| d.bytes().all(|b| b == b'0')) =>
            {
                Ok(0)
            }
            _ => Err(self.error(format!("invalid value: integer `{text}`, expected {ty}"))),
        }
    }

    /// Any finite number.
    pub fn f64(&self) -> Result<f64, ConfigError> {
        let Json::Number(text) = self.value else {
            return Err(self.invalid_type("f64"));
        };
        match text.parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(n),
            _ => Err(self.error(format!("number `{text}` out of range"))),
        }
    }

    /// The elements of an array, each with its path (`rules[3]`).
    pub fn items(&self) -> Result<Vec<Node<'_>>, ConfigError> {
        match self.value {
            Json::Array(items) => Ok(items
                .iter()
                .enumerate()
                .map(|(i, v)| self.index(i, v))
                .collect()),
            _ => Err(self.invalid_type("a sequence")),
        }
    }

    /// The number of elements of an array (0 for any other value).
    fn array_len(&self) -> usize {
        match self.value {
            Json::Array(items) => items.len(),
            _ => 0,
        }
    }

    /// Read each element of an array into `out`, with its path (`rules[3]`), stopping at the
    /// first error; not an array: `invalid type`.
    #[inline(never)]
    pub(crate) fn each_item(&self, out: &mut dyn Items) -> Result<(), ConfigError> {
        let Json::Array(items) = self.value else {
            return Err(self.invalid_type("a sequence"));
        };
        for (i, v) in items.iter().enumerate() {
            out.item(&self.index(i, v))?;
        }
        Ok(())
    }

    /// An object whose members may only be `fields` (any other is refused, as serde's
    /// `deny_unknown_fields`).
    pub fn object(&self, fields: &[&str]) -> Result<Object<'a>, ConfigError> {
        let Json::Object(members) = self.value else {
            return Err(self.invalid_type("an object"));
        };
        if let Some((k, v)) = members.iter().find(|(k, _)| !fields.contains(&k.as_str())) {
            return Err(self.member(k, v).error(cat(&[
                "unknown field `",
                k,
                "`, ",
                &expected_one_of(fields, "there are no fields"),
            ])));
        }
        Ok(Object {
            node: *self,
            members,
        })
    }

    /// The members of an object with free-form names (a map), in document order.
    pub fn entries(&self) -> Result<Vec<(&'a str, Node<'_>)>, ConfigError> {
        match self.value {
            Json::Object(members) => Ok(members
                .iter()
                .map(|(k, v)| (k.as_str(), self.member(k, v)))
                .collect()),
            _ => Err(self.invalid_type("a map")),
        }
    }

    /// A string naming one of `options` (a unit-only enum): `"block"`.
    pub fn choice<T: Copy>(&self, options: &[(&str, T)]) -> Result<T, ConfigError> {
        let name = self.str()?;
        options
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                self.unknown_variant(name, &options.iter().map(|(n, _)| *n).collect::<Vec<_>>())
            })
    }

    /// An externally tagged enum variant: `"source_ip"` gives `("source_ip", None)`,
    /// `{"header": "x-user"}` gives `("header", Some(node))` (path `...header`). Match on
    /// both and answer anything else with [`Node::bad_variant`].
    pub fn variant(&self) -> Result<(&'a str, Option<Node<'_>>), ConfigError> {
        match self.value {
            Json::String(s) => Ok((s, None)),
            Json::Object(members) if members.len() == 1 => {
                let (k, v) = &members[0];
                Ok((k, Some(self.member(k, v))))
            }
            _ => Err(self.invalid_type("a variant name or an object with one member")),
        }
    }

    /// `unknown variant `x`, expected one of ...`.
    pub fn unknown_variant(&self, name: &str, expected: &[&str]) -> ConfigError {
        self.error(format!(
            "unknown variant `{name}`, {}",
            expected_one_of(expected, "there are no variants")
        ))
    }

    /// The error for a [`Node::variant`] no arm took: an unknown name, or a known one written
    /// with a value it does not take (or without one it needs).
    pub fn bad_variant(
        &self,
        name: &str,
        value: Option<&Node<'_>>,
        units: &[&str],
        with_value: &[&str],
    ) -> ConfigError {
        if units.contains(&name) {
            self.error(format!("`{name}` takes no value: write \"{name}\""))
        } else if with_value.contains(&name) && value.is_none() {
            self.error(format!("`{name}` needs a value: write {{\"{name}\": ...}}"))
        } else {
            let all: Vec<&str> = units.iter().chain(with_value).copied().collect();
            self.unknown_variant(name, &all)
        }
    }
}

/// An object being read member by member (see [`Node::object`]).
#[derive(Debug)]
pub struct Object<'a> {
    node: Node<'a>,
    members: &'a [(String, Json)],
}

impl<'a> Object<'a> {
    /// The object's own node (for errors about the object as a whole).
    pub fn node(&self) -> &Node<'a> {
        &self.node
    }

    /// An error about the object as a whole (e.g. fields that exclude each other).
    pub fn error(&self, reason: impl fmt::Display) -> ConfigError {
        self.node.error(reason)
    }

    /// Member `key`, `null` included; `None` when absent.
    #[inline(never)]
    pub fn get(&self, key: &str) -> Option<Node<'_>> {
        self.members
            .iter()
            .find(|(k, _)| k == key)
            .map(|(k, v)| self.node.member(k, v))
    }

    /// Whether member `key` is given (and not `null`).
    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some_and(|n| !n.is_null())
    }

    /// Member `key` unless absent or `null`.
    #[inline(never)]
    fn present(&self, key: &str) -> Option<Node<'_>> {
        self.get(key).filter(|n| !n.is_null())
    }

    /// Member `key`; absent and `null` are `None` (serde's `Option` field).
    pub fn opt<T: FromJson>(&self, key: &str) -> Result<Option<T>, ConfigError> {
        match self.present(key) {
            Some(n) => T::from_json(&n).map(Some),
            None => Ok(None),
        }
    }

    /// Member `key`, `default` when absent.
    pub fn or<T: FromJson>(&self, key: &str, default: T) -> Result<T, ConfigError> {
        match self.get(key) {
            Some(n) => T::from_json(&n),
            None => Ok(default),
        }
    }

    /// Member `key`, `default()` when absent.
    pub fn or_else<T: FromJson>(
        &self,
        key: &str,
        default: impl FnOnce() -> T,
    ) -> Result<T, ConfigError> {
        match self.get(key) {
            Some(n) => T::from_json(&n),
            None => Ok(default()),
        }
    }

    /// Member `key`, a list, read into `out` (which is left as it is when `key` is absent):
    /// `or_default` of a `Vec` without a copy of the read per member (module size).
    #[inline(never)]
    pub(crate) fn read_list(&self, key: &str, out: &mut dyn Items) -> Result<(), ConfigError> {
        match self.get(key) {
            Some(n) => n.each_item(out),
            None => Ok(()),
        }
    }

    /// Member `key`, `T::default()` when absent.
    pub fn or_default<T: FromJson + Default>(&self, key: &str) -> Result<T, ConfigError> {
        self.or_else(key, T::default)
    }

    /// Member `key`, required: `missing field `key`` (at the object's path) when absent.
    pub fn req<T: FromJson>(&self, key: &str) -> Result<T, ConfigError> {
        match self.get(key) {
            Some(n) => T::from_json(&n),
            None => Err(self.missing(key)),
        }
    }

    /// `missing field `key`` (at the object's path).
    #[inline(never)]
    fn missing(&self, key: &str) -> ConfigError {
        self.node.error(cat(&["missing field `", key, "`"]))
    }

    /// Member `key`, required, read by `read` instead of a [`FromJson`] impl (for a member
    /// whose reading depends on more than its Rust type).
    pub fn req_with<T>(
        &self,
        key: &str,
        read: impl FnOnce(&Node<'_>) -> Result<T, ConfigError>,
    ) -> Result<T, ConfigError> {
        match self.get(key) {
            Some(n) => read(&n),
            None => Err(self.missing(key)),
        }
    }
}

/// Read an object member by member, naming each member once: the list [`Node::object`] checks
/// (unknown members refused, with serde's `expected one of` in this order) is made from the keys
/// of the entries, so it cannot drift from what is read. The expansion is what one writes by
/// hand (`let o = node.object(&[..])?;` then one `o.<method>(key, ..)?` per member, in order);
/// it uses `?`, so it is the body of a function returning `Result<_, ConfigError>`.
///
/// Entries, evaluated in order:
/// - `field: method("key", args..)` reads member `key` with [`Object`]'s `method` (`req`, `opt`,
///   `or`, `or_else`, `or_default`, `req_with`) and adds `key` to the list;
/// - `field = expr` computes a field from the ones before it (and from the object, when the
///   form `read_object!(o = node, also NAMES => ..)` names it `o` and adds the members it reads
///   itself, `NAMES`, to the end of the list).
///
/// ```
/// use sdk_ext::config::{parse_json, ConfigError, FromJson, Node};
///
/// struct Deny {
///     status: u16,
///     message: String,
///     loud: bool,
/// }
///
/// impl FromJson for Deny {
///     fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
///         sdk_ext::read_object!(node => Self {
///             status: or("status", 403),
///             message: or_else("message", || "denied".into()),
///             loud = status >= 500,
///         })
///     }
/// }
///
/// let deny = parse_json::<Deny>(br#"{"status": 503}"#).unwrap();
/// assert_eq!((deny.status, deny.message.as_str(), deny.loud), (503, "denied", true));
/// let err = parse_json::<Deny>(br#"{"statsu": 1}"#).err().unwrap();
/// assert_eq!(
///     err.to_string(),
///     "invalid configuration at `statsu`: unknown field `statsu`, expected `status` or `message`"
/// );
/// ```
#[macro_export]
macro_rules! read_object {
    ($o:ident = $node:expr $(, also $extra:expr)? => $ty:ident { $($entries:tt)* }) => {
        $crate::read_object!(@entry $o, $node, [$($extra)?], $ty, [] [] $($entries)*)
    };
    ($node:expr => $ty:ident { $($entries:tt)* }) => {
        $crate::read_object!(@entry o, $node, [], $ty, [] [] $($entries)*)
    };
    // A member: its key joins the list.
    (@entry $o:ident, $node:expr, [$($extra:expr)?], $ty:ident, [$($key:expr),*] [$($read:tt)*]
        $field:ident : $how:ident ( $k:expr $(, $arg:expr)* ) $(, $($rest:tt)*)?) => {
        $crate::read_object!(@entry $o, $node, [$($extra)?], $ty, [$($key,)* $k]
            [$($read)* ($field $o.$how($k $(, $arg)*)?)] $($($rest)*)?)
    };
    // A computed field.
    (@entry $o:ident, $node:expr, [$($extra:expr)?], $ty:ident, [$($key:expr),*] [$($read:tt)*]
        $field:ident = $value:expr $(, $($rest:tt)*)?) => {
        $crate::read_object!(@entry $o, $node, [$($extra)?], $ty, [$($key),*]
            [$($read)* ($field $value)] $($($rest)*)?)
    };
    // All entries taken: check the members, then read them in order.
    (@entry $o:ident, $node:expr, [$($extra:expr)?], $ty:ident, [$($key:expr),*]
        [$(($field:ident $value:expr))*]) => {{
        let $o = $crate::read_object!(@object $node, [$($key),*] $($extra)?);
        $(let $field = $value;)*
        Ok($ty { $($field),* })
    }};
    (@object $node:expr, [$($key:expr),*]) => {
        $node.object(&[$($key),*])?
    };
    (@object $node:expr, [$($key:expr),*] $extra:expr) => {{
        let names: ::std::vec::Vec<&str> = [$($key),*].iter().chain($extra.iter()).copied().collect();
        $node.object(&names)?
    }};
}

// Leaf readers out of line: read in every configuration type's reader, one copy each instead
// of one inlined per member (module size; configure time only).
impl FromJson for String {
    #[inline(never)]
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        node.str().map(str::to_string)
    }
}

impl FromJson for bool {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        node.bool()
    }
}

impl FromJson for f64 {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        node.f64()
    }
}

macro_rules! from_json_uint {
    ($($t:ty),*) => {$(
        impl FromJson for $t {
            #[inline(never)]
            fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
                let n = node.uint(<$t>::MAX as u64, stringify!($t))?;
                // `uint` bounded it by the type's maximum.
                Ok(<$t>::try_from(n).unwrap_or(<$t>::MAX))
            }
        }
    )*};
}
from_json_uint!(u8, u16, u32, u64, usize);

impl<T: FromJson> FromJson for Vec<T> {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        // The walk (type check, each element's path) is one function for every element type;
        // what is left per `T` is `Items::item`, the read and the push (module size: the loop
        // was ~600-900 bytes per `T`).
        let mut out = Vec::with_capacity(node.array_len());
        node.each_item(&mut out)?;
        Ok(out)
    }
}

/// Where [`Node::each_item`] puts the elements it reads. A trait of its own rather than
/// `dyn FnMut`: a closure's vtable carries a second copy of its body (`call_once`).
pub(crate) trait Items {
    fn item(&mut self, node: &Node<'_>) -> Result<(), ConfigError>;
}

impl<T: FromJson> Items for Vec<T> {
    fn item(&mut self, node: &Node<'_>) -> Result<(), ConfigError> {
        self.push(T::from_json(node)?);
        Ok(())
    }
}

/// `null` is `None`.
impl<T: FromJson> FromJson for Option<T> {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        if node.is_null() {
            Ok(None)
        } else {
            T::from_json(node).map(Some)
        }
    }
}

/// An object with free-form member names (duplicates are refused by the parser).
impl<T: FromJson> FromJson for BTreeMap<String, T> {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        let mut out = BTreeMap::new();
        for (k, v) in node.entries()? {
            out.insert(k.to_string(), T::from_json(&v)?);
        }
        Ok(out)
    }
}

/// The value as written (for configuration passed on untyped).
impl FromJson for Json {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        Ok(node.json().clone())
    }
}

/// `{}` (no members) as a configuration: for filters without settings.
impl FromJson for () {
    fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
        node.object(&[]).map(|_| ())
    }
}

/// Collects validation errors so one pass over the config can report the first one found
/// with its full path. Helpers for common checks keep validators short.
pub fn non_empty(path: &str, value: &str) -> Result<(), ConfigError> {
    if value.is_empty() {
        Err(ConfigError::new(path, "must not be empty"))
    } else {
        Ok(())
    }
}

/// Validate an HTTP status code for a local reply.
pub fn http_status(path: &str, status: u16) -> Result<u16, ConfigError> {
    if (200..=599).contains(&status) {
        Ok(status)
    } else {
        Err(ConfigError::new(
            path,
            format!("{status} is not an HTTP status between 200 and 599"),
        ))
    }
}

/// Validate a header name (lowercase token characters, as HTTP/2 requires) and return it.
pub fn header_name(path: &str, name: &str) -> Result<String, ConfigError> {
    let lower = name.to_ascii_lowercase();
    let valid_token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if lower.is_empty() {
        return Err(ConfigError::new(path, "header name must not be empty"));
    }
    let body = lower.strip_prefix(':').unwrap_or(&lower);
    if body.is_empty() || !body.chars().all(valid_token) {
        return Err(ConfigError::new(
            path,
            format!("`{name}` is not a valid HTTP header name"),
        ));
    }
    Ok(lower)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Inner {
        status: u16,
        names: Vec<String>,
        inner: Option<Box<Inner>>,
    }

    impl FromJson for Box<Inner> {
        fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
            Inner::from_json(node).map(Box::new)
        }
    }

    impl FromJson for Inner {
        fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
            let o = node.object(&["status", "names", "inner"])?;
            Ok(Inner {
                status: o.req("status")?,
                names: o.or_default("names")?,
                inner: o.opt("inner")?,
            })
        }
    }

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Mode {
        Block,
        Tag,
    }

    #[derive(Debug, PartialEq)]
    enum Key {
        SourceIp,
        Header(String),
    }

    impl FromJson for Key {
        fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
            match node.variant()? {
                ("source_ip", None) => Ok(Key::SourceIp),
                ("header", Some(v)) => v.str().map(|h| Key::Header(h.into())),
                (name, v) => Err(node.bad_variant(name, v.as_ref(), &["source_ip"], &["header"])),
            }
        }
    }

    #[derive(Debug, PartialEq)]
    struct Outer {
        rules: Vec<Inner>,
        mode: Option<Mode>,
        map: BTreeMap<String, Inner>,
        keys: Vec<Key>,
        ratio: f64,
    }

    impl FromJson for Outer {
        fn from_json(node: &Node<'_>) -> Result<Self, ConfigError> {
            let o = node.object(&["rules", "mode", "map", "keys", "ratio"])?;
            Ok(Outer {
                rules: o.or_default("rules")?,
                mode: o
                    .get("mode")
                    .map(|n| n.choice(&[("block", Mode::Block), ("tag", Mode::Tag)]))
                    .transpose()?,
                map: o.or_default("map")?,
                keys: o.or_default("keys")?,
                ratio: o.or("ratio", 0.5)?,
            })
        }
    }

    fn err(json: &str) -> (String, String) {
        let e = parse_json::<Outer>(json.as_bytes()).unwrap_err();
        (e.path, e.reason)
    }

    #[test]
    fn empty_config_means_all_defaults() {
        let cfg: Outer = parse_json(b"  ").unwrap();
        assert!(cfg.rules.is_empty());
        assert_eq!(cfg.ratio, 0.5);
    }

    #[test]
    fn a_full_document_reads() {
        let cfg: Outer = parse_json(
            br#"{"rules": [{"status": 1, "names": ["a"], "inner": {"status": 2}}],
                 "mode": "tag", "map": {"x": {"status": 3}}, "keys": ["source_ip", {"header": "h"}],
                 "ratio": 2.5e-1}"#,
        )
        .unwrap();
        assert_eq!(cfg.rules[0].inner.as_ref().unwrap().status, 2);
        assert_eq!(cfg.mode, Some(Mode::Tag));
        assert_eq!(cfg.map["x"].status, 3);
        assert_eq!(cfg.keys, vec![Key::SourceIp, Key::Header("h".into())]);
        assert_eq!(cfg.ratio, 0.25);
    }

    /// Every kind of error names the path of the value at fault and says why, in serde's words
    /// (the messages filters' users and tests already know).
    #[test]
    fn errors_name_path_and_reason() {
        let cases: &[(&str, &str, &str)] = &[
            (
                r#"{"rules": [{"status": 1}, {"stauts": 2}]}"#,
                "rules[1].stauts",
                "unknown field `stauts`, expected one of `status`, `names`, `inner`",
            ),
            (
                r#"{"rules": [{"status": 1}, {"status": "x"}]}"#,
                "rules[1].status",
                "invalid type: string `x`, expected u16",
            ),
            (
                r#"{"rules": [{"status": 70000}]}"#,
                "rules[0].status",
                "invalid value: integer `70000`, expected u16",
            ),
            (
                r#"{"rules": [{"status": -1}]}"#,
                "rules[0].status",
                "invalid value: integer `-1`, expected u16",
            ),
            (
                r#"{"rules": [{"status": 1.5}]}"#,
                "rules[0].status",
                "invalid type: floating point `1.5`, expected u16",
            ),
            (
                r#"{"rules": [{"status": 1}, {}]}"#,
                "rules[1]",
                "missing field `status`",
            ),
            (
                r#"{"rules": [{"status": 1, "names": ["a", 3]}]}"#,
                "rules[0].names[1]",
                "invalid type: integer `3`, expected a string",
            ),
            (
                r#"{"rules": [{"status": 1, "inner": {"status": 2, "inner": {"status": null}}}]}"#,
                "rules[0].inner.inner.status",
                "invalid type: null, expected u16",
            ),
            (
                r#"{"mode": "blok"}"#,
                "mode",
                "unknown variant `blok`, expected `block` or `tag`",
            ),
            (
                r#"{"mode": 3}"#,
                "mode",
                "invalid type: integer `3`, expected a string",
            ),
            (
                r#"{"map": {"a": {"status": 1}, "b": {"status": true}}}"#,
                "map.b.status",
                "invalid type: boolean `true`, expected u16",
            ),
            (
                r#"{"keys": ["header"]}"#,
                "keys[0]",
                "`header` needs a value: write {\"header\": ...}",
            ),
            (
                r#"{"keys": [{"source_ip": 1}]}"#,
                "keys[0]",
                "`source_ip` takes no value: write \"source_ip\"",
            ),
            (
                r#"{"keys": [{"heder": "x"}]}"#,
                "keys[0]",
                "unknown variant `heder`, expected `source_ip` or `header`",
            ),
            (
                r#"{"keys": [{"header": 1}]}"#,
                "keys[0].header",
                "invalid type: integer `1`, expected a string",
            ),
            (
                r#"{"ratio": "1"}"#,
                "ratio",
                "invalid type: string `1`, expected f64",
            ),
            (
                r#"{"ratio": 1e999}"#,
                "ratio",
                "number `1e999` out of range",
            ),
            (
                r#"{"rules": {"status": 1}}"#,
                "rules",
                "invalid type: a map, expected a sequence",
            ),
            (
                r#"[1]"#,
                "$",
                "invalid type: a sequence, expected an object",
            ),
            (
                r#"{"unknown": {"deep": [1, 2]}}"#,
                "unknown",
                "unknown field `unknown`, expected one of `rules`, `mode`, `map`, `keys`, `ratio`",
            ),
            (
                r#"{"rules": [{"status": 1}, {"status": 4x}]}"#,
                "rules[1]",
                "expected `,` or `}`",
            ),
            (
                r#"{"rules": [{"status": 1}"#,
                "rules",
                "EOF while parsing a list",
            ),
            (
                r#"{"mode": "tag", "mode": "block"}"#,
                "mode",
                "duplicate key `mode`",
            ),
        ];
        for (json, path, reason) in cases {
            assert_eq!(err(json), (path.to_string(), reason.to_string()), "{json}");
        }
        assert_eq!(
            parse_json::<Outer>(b"{").unwrap_err().to_string(),
            "invalid configuration at `$`: EOF while parsing an object"
        );
        assert_eq!(
            parse_json::<()>(br#"{"x": 1}"#).unwrap_err().reason,
            "unknown field `x`, there are no fields"
        );
    }

    #[test]
    fn null_is_absent_only_for_optional_members() {
        let cfg: Outer = parse_json(br#"{"rules": [{"status": 1, "inner": null}]}"#).unwrap();
        assert_eq!(cfg.rules[0].inner, None);
        assert_eq!(
            err(r#"{"rules": null}"#).1,
            "invalid type: null, expected a sequence"
        );
    }

    #[test]
    fn indices_are_written_in_decimal() {
        for n in [0, 7, 10, 99, 1234, u64::MAX] {
            let mut s = String::new();
            push_decimal(&mut s, n);
            assert_eq!(s, n.to_string());
        }
    }

    #[test]
    fn paths_join_like_json_paths() {
        assert_eq!(join_path("rules[0]", "path"), "rules[0].path");
        assert_eq!(join_path("rules", "[3]"), "rules[3]");
        assert_eq!(join_path("$", "x"), "x");
        let e = ConfigError::new("regex", "bad").within("rules[0].path");
        assert_eq!(e.path, "rules[0].path.regex");
    }

    #[test]
    fn status_and_header_name_checks() {
        assert!(http_status("s", 403).is_ok());
        assert_eq!(http_status("s", 99).unwrap_err().path, "s");
        assert_eq!(header_name("h", "X-Deny").unwrap(), "x-deny");
        assert!(header_name("h", "bad header").is_err());
        assert!(header_name("h", "").is_err());
        assert!(non_empty("n", "").is_err());
    }
}
