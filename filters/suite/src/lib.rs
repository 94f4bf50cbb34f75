//! `suite`: several filters in one module and one filter instance.
//!
//! Every separate Wasm filter costs Envoy a context per request and a VM crossing per callback,
//! about as much as a no-op filter (`cargo xtask bench`: `noop-wasm`, `noop-wasm-x3`). The suite
//! runs its members inside one filter, so that floor is paid once for the whole set. Members
//! are the filter crates themselves (the same code, with `default-features = false`), composed
//! by [`compose!`] into one [`HttpFilter`]:
//!
//! * **Configuration**: one JSON document, each member's own configuration under its key
//!   (`{"policy": {...}, "router": {...}, "threat_score": {...}}`); a member whose key is absent
//!   is off. Errors name the member: `policy.rules[3].match.paths[0].regex`.
//! * **Metrics**: each member defines its metrics under its own name, so they are the same
//!   (`policy_*`, `router_*`, ...) whether the member runs alone or in the suite.
//! * **Request**: members run in order, as separate filters in that order would: the first
//!   local reply wins and the rest do not run; header changes accumulate in order. A member that
//!   asks for the body holds the members after it until the body has arrived (up to the largest
//!   `max_body_bytes` of the members; each sees at most its own limit, `truncated` set
//!   accordingly), then they continue.
//! * **Response**: members' response hooks run in reverse order, as Envoy's encoder chain does.

pub use sdk_ext;

/// Compose filters into one [`sdk_ext::HttpFilter`]:
///
/// ```text
/// compose! {
///     /// Policy, then threat score, then routing.
///     pub filter SuiteFilter, config Config, state State, name "suite";
///     policy: policy::PolicyFilter,
///     threat_score: threat_score::ThreatScoreFilter,
///     router: router::RouterFilter,
/// }
/// ```
///
/// generates `Config` (one optional field per member, its own `Config` type, unknown fields
/// rejected), `State` (each member's state) and `SuiteFilter`.
#[macro_export]
macro_rules! compose {
    (
        $(#[$meta:meta])*
        pub filter $filter:ident, config $config:ident, state $state:ident, name $name:literal;
        $( $field:ident : $member:ty ),+ $(,)?
    ) => {
        /// The combined configuration: each member's configuration under its key; absent = off.
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $config {
            $(
                #[serde(default)]
                pub $field: Option<<$member as $crate::sdk_ext::HttpFilter>::Config>,
            )+
        }

        /// Each member's per-request state, and which member waits for the body.
        #[derive(Default)]
        pub struct $state {
            $( pub $field: <$member as $crate::sdk_ext::HttpFilter>::State, )+
            /// Index of the member whose `InspectBody` paused the others.
            pub resume: usize,
        }

        $(#[$meta])*
        pub struct $filter {
            $( pub $field: Option<$member>, )+
            max_body: usize,
        }

        impl $filter {
            /// Member keys, in order.
            pub const MEMBERS: &'static [&'static str] = &[$(stringify!($field)),+];

            fn member_headers(
                &self,
                i: usize,
                req: &$crate::sdk_ext::RequestView,
                st: &mut $state,
                ops: &mut $crate::sdk_ext::HeaderOps,
            ) -> $crate::sdk_ext::Decision {
                use $crate::sdk_ext::HttpFilter as _;
                let mut k = 0usize;
                $(
                    if i == k {
                        return match &self.$field {
                            Some(f) => f.on_request_headers(req, &mut st.$field, ops),
                            None => $crate::sdk_ext::Decision::Continue,
                        };
                    }
                    k += 1;
                )+
                let _ = k;
                $crate::sdk_ext::Decision::Continue
            }

            fn member_body(
                &self,
                i: usize,
                req: &$crate::sdk_ext::RequestView,
                body: $crate::sdk_ext::BodyChunk<'_>,
                st: &mut $state,
                ops: &mut $crate::sdk_ext::HeaderOps,
            ) -> $crate::sdk_ext::Decision {
                use $crate::sdk_ext::HttpFilter as _;
                let mut k = 0usize;
                $(
                    if i == k {
                        return match &self.$field {
                            Some(f) => {
                                let chunk = $crate::clip(body, f.max_body_bytes());
                                f.on_request_body(req, chunk, &mut st.$field, ops)
                            }
                            None => $crate::sdk_ext::Decision::Continue,
                        };
                    }
                    k += 1;
                )+
                let _ = k;
                $crate::sdk_ext::Decision::Continue
            }

            fn member_response(
                &self,
                i: usize,
                st: &mut $state,
                ops: &mut $crate::sdk_ext::HeaderOps,
            ) {
                use $crate::sdk_ext::HttpFilter as _;
                let mut k = 0usize;
                $(
                    if i == k {
                        if let Some(f) = &self.$field {
                            f.on_response_headers(&mut st.$field, ops);
                        }
                        return;
                    }
                    k += 1;
                )+
                let _ = k;
            }

            /// Run members `start..` on the request headers. With `body` (resuming after a
            /// member's `InspectBody`), a member that asks for the body gets it at once.
            fn run_from(
                &self,
                start: usize,
                req: &$crate::sdk_ext::RequestView,
                st: &mut $state,
                ops: &mut $crate::sdk_ext::HeaderOps,
                body: Option<$crate::sdk_ext::BodyChunk<'_>>,
            ) -> $crate::sdk_ext::Decision {
                use $crate::sdk_ext::Decision;
                for i in start..Self::MEMBERS.len() {
                    match self.member_headers(i, req, st, ops) {
                        Decision::Continue => {}
                        Decision::Respond(r) => return Decision::Respond(r),
                        Decision::InspectBody => match body {
                            Some(b) => {
                                if let Decision::Respond(r) = self.member_body(i, req, b, st, ops) {
                                    return Decision::Respond(r);
                                }
                            }
                            None => {
                                st.resume = i;
                                return Decision::InspectBody;
                            }
                        },
                    }
                }
                Decision::Continue
            }
        }

        impl $crate::sdk_ext::HttpFilter for $filter {
            const NAME: &'static str = $name;
            type Config = $config;
            type State = $state;

            fn configure(
                config: $config,
                metrics: &mut $crate::sdk_ext::Metrics,
            ) -> Result<Self, $crate::sdk_ext::ConfigError> {
                $(
                    let $field = match config.$field {
                        Some(c) => {
                            let mut scoped = metrics
                                .scoped(<$member as $crate::sdk_ext::HttpFilter>::NAME);
                            Some(
                                <$member as $crate::sdk_ext::HttpFilter>::configure(c, &mut scoped)
                                    .map_err(|e| e.within(stringify!($field)))?,
                            )
                        }
                        None => None,
                    };
                )+
                let max_body = [$(
                    $field
                        .as_ref()
                        .map_or(0, $crate::sdk_ext::HttpFilter::max_body_bytes)
                ),+]
                .into_iter()
                .max()
                .unwrap_or(0);
                Ok(Self { $($field,)+ max_body })
            }

            fn on_request_headers(
                &self,
                req: &$crate::sdk_ext::RequestView,
                st: &mut $state,
                ops: &mut $crate::sdk_ext::HeaderOps,
            ) -> $crate::sdk_ext::Decision {
                self.run_from(0, req, st, ops, None)
            }

            fn max_body_bytes(&self) -> usize {
                self.max_body
            }

            fn on_request_body(
                &self,
                req: &$crate::sdk_ext::RequestView,
                body: $crate::sdk_ext::BodyChunk<'_>,
                st: &mut $state,
                ops: &mut $crate::sdk_ext::HeaderOps,
            ) -> $crate::sdk_ext::Decision {
                let i = st.resume;
                if let $crate::sdk_ext::Decision::Respond(r) =
                    self.member_body(i, req, body, st, ops)
                {
                    return $crate::sdk_ext::Decision::Respond(r);
                }
                self.run_from(i + 1, req, st, ops, Some(body))
            }

            fn on_response_headers(&self, st: &mut $state, ops: &mut $crate::sdk_ext::HeaderOps) {
                for i in (0..Self::MEMBERS.len()).rev() {
                    self.member_response(i, st, ops);
                }
            }
        }
    };
}

/// The part of `body` a member with body limit `limit` sees.
pub fn clip(body: sdk_ext::BodyChunk<'_>, limit: usize) -> sdk_ext::BodyChunk<'_> {
    let n = body.bytes.len().min(limit);
    sdk_ext::BodyChunk {
        bytes: &body.bytes[..n],
        truncated: body.truncated || body.bytes.len() > limit,
    }
}

#[cfg(test)]
mod tests;
