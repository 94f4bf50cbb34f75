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
//! * **Request**: members run in order, as separate filters in that order would: each sees the
//!   request as the members before it left it (their header edits, removals and path rewrites
//!   applied to its view, [`sdk_ext::RequestView::with_ops`]); the upstream gets the net change
//!   ([`sdk_ext::view::diff_headers`]); the first local reply wins and the rest do not run. A member that
//!   asks for the body (`InspectBody`) does not hold the members after it: their header hooks
//!   run at once (the glue cannot hold the headers while it waits for the body, so header
//!   changes must be made now, as separate filters after a body-inspecting one make them). Once
//!   the body has arrived (up to the largest `max_body_bytes` of the members; each sees at most
//!   its own limit, `truncated` set accordingly), the waiting members' body hooks run in order
//!   and the first reply wins.
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
        pub struct $config {
            $(
                pub $field: Option<<$member as $crate::sdk_ext::HttpFilter>::Config>,
            )+
        }

        impl $crate::sdk_ext::FromJson for $config {
            fn from_json(
                node: &$crate::sdk_ext::Node<'_>,
            ) -> Result<Self, $crate::sdk_ext::ConfigError> {
                let o = node.object(&[$(stringify!($field)),+])?;
                Ok(Self {
                    $( $field: o.opt(stringify!($field))?, )+
                })
            }
        }

        // `waiting` is a 64-bit mask of members.
        const _: () = assert!(
            [$(stringify!($field)),+].len() <= 64,
            "compose! takes at most 64 members"
        );

        /// Each member's per-request state, and which members wait for the body.
        #[derive(Default)]
        pub struct $state {
            $( pub $field: <$member as $crate::sdk_ext::HttpFilter>::State, )+
            /// Bit `i` set: member `i` asked for the body (`InspectBody`) and waits for it.
            pub waiting: u64,
            /// The view a waiting member saw at its header hook when earlier members had
            /// edited it (its body hook sees the same; absent: the request as received).
            pub views: Vec<(usize, $crate::sdk_ext::RequestView)>,
        }

        $(#[$meta])*
        pub struct $filter {
            $( pub $field: Option<$member>, )+
            max_body: usize,
        }

        impl $filter {
            /// Member keys, in order.
            pub const MEMBERS: &'static [&'static str] = &[$(stringify!($field)),+];

            /// Run `hook` on member `i` (the one dispatch every hook goes through).
            fn with_member<H: $crate::Hook>(&self, i: usize, st: &mut $state, hook: H) -> H::Out {
                let mut k = 0usize;
                $(
                    if i == k {
                        return hook.call(self.$field.as_ref(), &mut st.$field);
                    }
                    k += 1;
                )+
                let _ = k;
                hook.none()
            }

            /// Every member's header hook, in order, until one replies. Each member sees the
            /// request as the members before it left it (their header edits, removals and path
            /// rewrites applied to its view), as separate filters would. A member that asks
            /// for the body is noted in `waiting` (with the view it saw, for its body hook) and
            /// the members after it still run now: their header changes must be made before
            /// the headers go upstream (the glue cannot hold them while it waits for the body,
            /// see `Decision::InspectBody`), exactly as separate filters after a
            /// body-inspecting filter see the headers. `ops` receives the net change.
            fn run_headers(
                &self,
                req: &$crate::sdk_ext::RequestView,
                st: &mut $state,
                ops: &mut $crate::sdk_ext::HeaderOps,
            ) -> $crate::sdk_ext::Decision {
                use $crate::sdk_ext::{Decision, HeaderOps};
                // The view after the edits so far; `None` while nobody has edited anything
                // (no copy of the headers for read-only members, nor after the last member
                // when it is the only one that edits).
                let mut edited: Option<$crate::sdk_ext::RequestView> = None;
                let mut touched: Vec<String> = Vec::new();
                let mut first_ops: Option<HeaderOps> = None;
                let mut editors = 0usize;
                let mut decision = Decision::Continue;
                let n = Self::MEMBERS.len();
                for i in 0..n {
                    let mut mine = HeaderOps::default();
                    let view = edited.as_ref().unwrap_or(req);
                    match self.with_member(i, st, $crate::Headers { req: view, ops: &mut mine }) {
                        Decision::Continue => {}
                        Decision::Respond(r) => decision = Decision::Respond(r),
                        // Refused at configure time (`calls_out`): the suite cannot hold its
                        // other members for a call. Fail closed if it ever happens.
                        Decision::Call(_) => {
                            decision = Decision::Respond($crate::sdk_ext::LocalReply::json(
                                503,
                                "unavailable",
                                "filter could not run",
                                req.request_id(),
                            ))
                        }
                        Decision::InspectBody => {
                            st.waiting |= 1u64 << i;
                            if let Some(v) = &edited {
                                st.views.push((i, v.with_ops(&HeaderOps::default())));
                            }
                        }
                    }
                    let stop = matches!(decision, Decision::Respond(_));
                    if !mine.is_empty() {
                        editors += 1;
                        // The names the net change compares; the first editor's are read from
                        // `first_ops` at the end, and only when a second editor comes (the
                        // usual single editor, the router, allocates none).
                        if editors > 1 {
                            touched.extend(mine.touched_names());
                        }
                        // A later member will read the view, or the net change needs it.
                        if (i + 1 < n && !stop) || editors > 1 {
                            let next = view.with_ops(&mine);
                            edited = Some(next);
                        }
                        if editors == 1 {
                            first_ops = Some(mine);
                        }
                    }
                    if stop {
                        break;
                    }
                }
                match (editors, first_ops, edited) {
                    // One member edited: its own ops, exactly as it asked.
                    (1, Some(mine), _) => ops.extend(mine),
                    // Several: the net change, so a later member's removal is not undone by an
                    // earlier member's set (the glue applies removals, then sets, then adds).
                    (2.., Some(first), Some(fin)) => {
                        let mut names: Vec<String> = first.touched_names().collect();
                        names.append(&mut touched);
                        ops.extend($crate::sdk_ext::view::diff_headers(
                            req.headers(),
                            fin.headers(),
                            &names,
                        ))
                    }
                    _ => {}
                }
                match decision {
                    Decision::Continue if st.waiting != 0 => Decision::InspectBody,
                    other => other,
                }
            }
        }

        impl $crate::sdk_ext::HttpFilter for $filter {
            const NAME: &'static str = $name;
            type Config = $config;
            type State = $state;

            /// Each present member's `configure`, in order, with its own metric scope and
            /// the host's services (shared data, clock); errors are prefixed with its key.
            fn configure(
                config: $config,
                setup: $crate::sdk_ext::Setup<'_>,
            ) -> Result<Self, $crate::sdk_ext::ConfigError> {
                let $crate::sdk_ext::Setup { metrics, services } = setup;
                $(
                    let $field = match config.$field {
                        Some(c) => {
                            let mut scoped = metrics
                                .scoped(<$member as $crate::sdk_ext::HttpFilter>::NAME);
                            let member_setup = $crate::sdk_ext::Setup {
                                metrics: &mut scoped,
                                services: services.clone(),
                            };
                            Some(
                                <$member as $crate::sdk_ext::HttpFilter>::configure(
                                    c,
                                    member_setup,
                                )
                                .map_err(|e| e.within(stringify!($field)))?,
                            )
                        }
                        None => None,
                    };
                    if $field
                        .as_ref()
                        .is_some_and($crate::sdk_ext::HttpFilter::calls_out)
                    {
                        return Err($crate::sdk_ext::ConfigError::new(
                            stringify!($field),
                            "this configuration makes gRPC calls (e.g. policy's global rate \
                             limits), which the suite cannot wait for: run the filter as its own \
                             module",
                        ));
                    }
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
                self.run_headers(req, st, ops)
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
                // The waiting members' body hooks, in member order; the first reply wins.
                for i in 0..Self::MEMBERS.len() {
                    if st.waiting & (1u64 << i) != 0 {
                        let saved = st
                            .views
                            .iter()
                            .position(|(m, _)| *m == i)
                            .map(|p| st.views.swap_remove(p).1);
                        let view = saved.as_ref().unwrap_or(req);
                        if let $crate::sdk_ext::Decision::Respond(r) =
                            self.with_member(i, st, $crate::Body { req: view, body, ops })
                        {
                            return $crate::sdk_ext::Decision::Respond(r);
                        }
                    }
                }
                $crate::sdk_ext::Decision::Continue
            }

            fn on_response_headers(&self, st: &mut $state, ops: &mut $crate::sdk_ext::HeaderOps) {
                for i in (0..Self::MEMBERS.len()).rev() {
                    self.with_member(i, st, $crate::Response { ops });
                }
            }
        }
    };
}

compose! {
    /// The suite module's filter: policy, then threat scoring, then routing. See `README.md`
    /// for the order (and why) and the configuration.
    pub filter SuiteFilter, config SuiteConfig, state SuiteState, name "suite";
    policy: policy::PolicyFilter,
    threat_score: threat_score::ThreatScoreFilter,
    router: router::RouterFilter,
}

#[cfg(all(target_arch = "wasm32", feature = "export"))]
sdk_ext::export_http_filter!(SuiteFilter);

/// One hook of a composed filter's members ([`compose!`]): `call` runs it on a member (`None`:
/// the member is off). With it one dispatch ladder per composition serves every hook.
#[doc(hidden)]
pub trait Hook {
    type Out;
    fn call<F: sdk_ext::HttpFilter>(self, member: Option<&F>, st: &mut F::State) -> Self::Out;
    /// What an absent member answers.
    fn none(self) -> Self::Out;
}

/// `on_request_headers` on the view the member sees.
#[doc(hidden)]
pub struct Headers<'a> {
    pub req: &'a sdk_ext::RequestView,
    pub ops: &'a mut sdk_ext::HeaderOps,
}

impl Hook for Headers<'_> {
    type Out = sdk_ext::Decision;
    fn call<F: sdk_ext::HttpFilter>(self, member: Option<&F>, st: &mut F::State) -> Self::Out {
        match member {
            Some(f) => f.on_request_headers(self.req, st, self.ops),
            None => self.none(),
        }
    }
    fn none(self) -> Self::Out {
        sdk_ext::Decision::Continue
    }
}

/// `on_request_body` with the body clipped to the member's own limit.
#[doc(hidden)]
pub struct Body<'a, 'b> {
    pub req: &'a sdk_ext::RequestView,
    pub body: sdk_ext::BodyChunk<'b>,
    pub ops: &'a mut sdk_ext::HeaderOps,
}

impl Hook for Body<'_, '_> {
    type Out = sdk_ext::Decision;
    fn call<F: sdk_ext::HttpFilter>(self, member: Option<&F>, st: &mut F::State) -> Self::Out {
        match member {
            Some(f) => {
                let chunk = clip(self.body, f.max_body_bytes());
                f.on_request_body(self.req, chunk, st, self.ops)
            }
            None => self.none(),
        }
    }
    fn none(self) -> Self::Out {
        sdk_ext::Decision::Continue
    }
}

/// `on_response_headers`.
#[doc(hidden)]
pub struct Response<'a> {
    pub ops: &'a mut sdk_ext::HeaderOps,
}

impl Hook for Response<'_> {
    type Out = ();
    fn call<F: sdk_ext::HttpFilter>(self, member: Option<&F>, st: &mut F::State) {
        if let Some(f) = member {
            f.on_response_headers(st, self.ops);
        }
    }
    fn none(self) {}
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
