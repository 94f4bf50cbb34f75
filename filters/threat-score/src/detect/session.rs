//! stub
use super::Findings;
use crate::extract::Prepared;
pub(crate) fn scan(_p: &Prepared<'_>, _out: &mut Findings) {}
