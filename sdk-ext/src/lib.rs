//! Placeholder; the real crate lands with the foundation issue.
