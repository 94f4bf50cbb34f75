//! The request lifecycle, case by case: a scripted filter, a sequence of host events, and the
//! step the machine answers each with (what the glue will do), plus the hooks that ran.

use super::*;
use crate::config::ConfigError;
use crate::filter::Setup;
use crate::testing::RequestBuilder;
use std::cell::RefCell;

/// A filter that answers what its script says and logs every hook call. `OPEN`: fails open on
/// host errors.
#[derive(Default)]
struct Script<const OPEN: bool> {
    headers: Option<Decision>,
    body: Option<Decision>,
    /// The call hook's decision (default: continue).
    call: Option<Decision>,
    max_body: usize,
    hooks: RefCell<Vec<String>>,
}

impl<const OPEN: bool> HttpFilter for Script<OPEN> {
    const NAME: &'static str = "script";
    type Config = ();
    type State = ();
    const ON_HOST_ERROR: HostErrorPolicy = if OPEN {
        HostErrorPolicy::FailOpen
    } else {
        HostErrorPolicy::FailClosed
    };

    fn configure(_: (), _: Setup<'_>) -> Result<Self, ConfigError> {
        Ok(Self::default())
    }

    fn on_request_headers(&self, _: &RequestView, _: &mut (), ops: &mut HeaderOps) -> Decision {
        self.hooks.borrow_mut().push("headers".into());
        ops.set("x-seen", "headers");
        self.headers.clone().unwrap_or(Decision::Continue)
    }

    fn max_body_bytes(&self) -> usize {
        self.max_body
    }

    fn on_request_body(
        &self,
        _: &RequestView,
        body: BodyChunk<'_>,
        _: &mut (),
        ops: &mut HeaderOps,
    ) -> Decision {
        let log = format!("body({},{})", body.bytes.len(), body.truncated);
        self.hooks.borrow_mut().push(log);
        ops.set("x-seen", "body");
        self.body.clone().unwrap_or(Decision::Continue)
    }

    fn on_call_response(
        &self,
        _: &RequestView,
        outcome: CallOutcome<'_>,
        _: &mut (),
        ops: &mut HeaderOps,
    ) -> Decision {
        let log = match outcome {
            CallOutcome::Answer(b) => format!("call(answer {})", b.len()),
            CallOutcome::Failed {
                status,
                dispatched,
                timed_out,
            } => format!("call(failed {status},{dispatched},{timed_out})"),
        };
        self.hooks.borrow_mut().push(log);
        ops.set("x-seen", "call");
        self.call.clone().unwrap_or(Decision::Continue)
    }

    fn on_response_headers(&self, _: &mut (), ops: &mut HeaderOps) {
        self.hooks.borrow_mut().push("response".into());
        ops.set("x-seen", "response");
    }
}

/// A host event.
#[derive(Debug, Clone, Copy)]
enum Ev {
    Headers {
        eos: bool,
    },
    Body {
        size: usize,
        eos: bool,
    },
    Trailers,
    /// The body read asked for, with this many bytes.
    Read(usize),
    Refused(HostOp),
    Response,
    /// The call asked for was sent: token, host clock (ns).
    Dispatched(u32, u64),
    /// A call closed: token, gRPC status, answer size, the host's message, host clock (ns).
    Closed(u32, u32, usize, Option<&'static str>, u64),
    /// The call answer asked for, with this many bytes.
    Answer(usize),
}

/// A step as one line: `req!`/`req?`/`resp?` (edits, required or not), then the `Then`.
fn show(step: &Step) -> String {
    let edits = step.edits.as_ref().map(|e| {
        let side = match e.side {
            Side::Request => "req",
            Side::Response => "resp",
        };
        format!("{side}{} ", if e.required { "!" } else { "?" })
    });
    let then = match &step.then {
        Then::Continue => "Continue".to_string(),
        Then::Pause => "Pause".to_string(),
        Then::Reply(r) => format!("Reply {}", r.status),
        Then::Reset => "Reset".to_string(),
        Then::ReadBody(n) => format!("ReadBody {n}"),
        Then::NoBody => "NoBody".to_string(),
        Then::Call(c) => format!("Call {}", c.method),
        Then::ReadCallAnswer(n) => format!("ReadCallAnswer {n}"),
        Then::Resume => "Resume".to_string(),
        Then::Unsupported(op) => format!("Unsupported {op:?}"),
    };
    format!("{}{then}", edits.unwrap_or_default())
}

fn run<const OPEN: bool>(script: Script<OPEN>, events: &[Ev]) -> (Vec<String>, Vec<String>) {
    let filter = Rc::new(script);
    let mut stream = HttpStream::new(Rc::clone(&filter));
    let steps = events
        .iter()
        .map(|ev| {
            let step = match *ev {
                Ev::Headers { eos } => {
                    stream.on_request_headers(RequestBuilder::post("/x").build(), eos)
                }
                Ev::Body { size, eos } => stream.on_request_body(size, eos),
                Ev::Trailers => stream.on_request_trailers(),
                Ev::Read(n) => stream.on_body_read(vec![b'a'; n]),
                Ev::Refused(op) => stream.on_host_error(op),
                Ev::Response => stream.on_response_headers(),
                Ev::Dispatched(token, now) => stream.on_call_dispatched(token, now),
                Ev::Closed(token, status, size, message, now) => {
                    stream.on_call_closed(&CallClose {
                        token,
                        status,
                        response_size: size,
                        message: message.map(String::from),
                        now_nanos: now,
                    })
                }
                Ev::Answer(n) => stream.on_call_answer(vec![b'r'; n]),
            };
            show(&step)
        })
        .collect();
    let hooks = filter.hooks.borrow().clone();
    (steps, hooks)
}

fn check<const OPEN: bool>(cases: Vec<Case<OPEN>>) {
    for (name, script, events, steps, hooks) in cases {
        let (got_steps, got_hooks) = run(script, &events);
        assert_eq!(got_steps, steps, "{name}: steps");
        assert_eq!(got_hooks, hooks, "{name}: hooks");
    }
}

fn deny(status: u16) -> Option<Decision> {
    Some(Decision::Respond(LocalReply::json(
        status, "denied", "no", None,
    )))
}

fn inspect(max_body: usize) -> Script<false> {
    Script {
        headers: Some(Decision::InspectBody),
        max_body,
        ..Script::default()
    }
}

fn inspect_open(max_body: usize) -> Script<true> {
    Script {
        headers: Some(Decision::InspectBody),
        max_body,
        ..Script::default()
    }
}

/// A filter whose header hook asks for a call (deadline: 100 ns after dispatch).
fn calls<const OPEN: bool>(hook: Option<Decision>) -> Script<OPEN> {
    Script {
        headers: Some(Decision::Call(GrpcCall {
            cluster: "svc".into(),
            service: "pkg.Service",
            method: "Check",
            message: b"q".to_vec(),
            timeout: Duration::from_nanos(100),
        })),
        call: hook,
        ..Script::default()
    }
}

use Ev::*;

/// One row: what it shows, the filter, the events, the step answering each, the hooks that ran.
type Case<const OPEN: bool> = (
    &'static str,
    Script<OPEN>,
    Vec<Ev>,
    Vec<&'static str>,
    Vec<&'static str>,
);

#[test]
fn fail_closed_filters() {
    let body = |size, eos| Body { size, eos };
    let hdrs = |eos| Headers { eos };
    #[rustfmt::skip]
    let cases: Vec<Case<false>> = vec![
        ("continue: edits required, response edits optional",
            Script::default(), vec![hdrs(true), Response],
            vec!["req! Continue", "resp? Continue"], vec!["headers", "response"]),
        ("no body inspection: body and trailers pass",
            Script::default(), vec![hdrs(false), body(5, false), body(9, true), Trailers],
            vec!["req! Continue", "Continue", "Continue", "Continue"], vec!["headers"]),
        ("a denial: edits optional, the body ignored (trailers pass), the response still runs",
            Script { headers: deny(403), ..Script::default() },
            vec![hdrs(false), body(10, true), Trailers, Response],
            vec!["req? Reply 403", "Pause", "Continue", "resp? Continue"], vec!["headers", "response"]),
        ("inspect a request without a body: the body hook runs at once with no read",
            inspect(10), vec![hdrs(true), Read(0)],
            vec!["req! NoBody", "req! Continue"], vec!["headers", "body(0,false)"]),
        ("inspect with a zero limit: no buffering",
            inspect(0), vec![hdrs(false), Read(0), body(5, true)],
            vec!["req! NoBody", "req! Continue", "Continue"], vec!["headers", "body(0,false)"]),
        ("buffer until the end of stream: headers go on, the body is held",
            inspect(10), vec![hdrs(false), body(4, false), body(8, true), Read(8)],
            vec!["req! Continue", "Pause", "ReadBody 8", "req! Continue"],
            vec!["headers", "body(8,false)"]),
        ("a body past the limit: read the limit, truncated",
            inspect(10), vec![hdrs(false), body(12, false), Read(10)],
            vec!["req! Continue", "ReadBody 10", "req! Continue"], vec!["headers", "body(10,true)"]),
        ("exactly the limit before the end: read it, not truncated",
            inspect(10), vec![hdrs(false), body(10, false), Read(10), body(15, true)],
            vec!["req! Continue", "ReadBody 10", "req! Continue", "Continue"],
            vec!["headers", "body(10,false)"]),
        ("trailers end a short body: read up to the limit",
            inspect(10), vec![hdrs(false), body(4, false), Trailers, Read(4)],
            vec!["req! Continue", "Pause", "ReadBody 10", "req! Continue"],
            vec!["headers", "body(4,false)"]),
        ("trailers after a full buffer: truncated",
            inspect(10), vec![hdrs(false), body(9, false), Trailers, Read(10)],
            vec!["req! Continue", "Pause", "ReadBody 10", "req! Continue"],
            vec!["headers", "body(10,true)"]),
        ("the body hook denies",
            Script { body: deny(413), ..inspect(10) },
            vec![hdrs(false), body(3, true), Read(3), Response],
            vec!["req! Continue", "ReadBody 3", "req? Reply 413", "resp? Continue"],
            vec!["headers", "body(3,false)", "response"]),
        ("headers unreadable: 503, the rest ignored",
            Script::default(), vec![Refused(HostOp::ReadHeaders), body(5, true)],
            vec!["Reply 503", "Pause"], vec![]),
        ("an edit refused while holding the body: 503, no body hook",
            inspect(10), vec![hdrs(false), Refused(HostOp::EditRequestHeaders), body(5, true)],
            vec!["req! Continue", "Reply 503", "Pause"], vec!["headers"]),
        ("a body read refused: 503",
            inspect(10), vec![hdrs(false), body(5, true), Refused(HostOp::ReadBody), Trailers],
            vec!["req! Continue", "ReadBody 5", "Reply 503", "Continue"], vec!["headers"]),
        ("a reply refused: reset; a reset refused: stop",
            Script { headers: deny(403), ..Script::default() },
            vec![hdrs(true), Refused(HostOp::SendReply), Refused(HostOp::ResetStream), body(1, true)],
            vec!["req? Reply 403", "Reset", "Pause", "Pause"], vec!["headers"]),
        ("the 503 itself refused: reset",
            Script::default(),
            vec![Refused(HostOp::ReadHeaders), Refused(HostOp::SendReply)],
            vec!["Reply 503", "Reset"], vec![]),
        ("a response edit refused: the response goes on",
            Script::default(), vec![hdrs(true), Response, Refused(HostOp::EditResponseHeaders)],
            vec!["req! Continue", "resp? Continue", "Continue"], vec!["headers", "response"]),
        ("a body read reported with none pending: nothing runs",
            Script::default(), vec![hdrs(true), Read(3)],
            vec!["req! Continue", "Continue"], vec!["headers"]),
        ("a call: edits first, the request (body, trailers) held until the answer, then resumed",
            calls(None),
            vec![hdrs(false), Dispatched(7, 1000), body(5, true), Trailers,
                 Closed(7, 0, 3, None, 1050), Answer(3), Response],
            vec!["req! Call Check", "Pause", "Pause", "Pause", "ReadCallAnswer 3", "req! Resume",
                 "resp? Continue"],
            vec!["headers", "call(answer 3)", "response"]),
        ("the call hook denies: edits optional, the reply from the held request",
            calls(deny(429)),
            vec![hdrs(true), Dispatched(7, 0), Closed(7, 0, 2, None, 10), Answer(2), body(1, true)],
            vec!["req! Call Check", "Pause", "ReadCallAnswer 2", "req? Reply 429", "Pause"],
            vec!["headers", "call(answer 2)"]),
        ("another call's close is ignored; a failure before the deadline is no timeout",
            calls(None),
            vec![hdrs(true), Dispatched(7, 1000), Closed(8, 0, 1, None, 1010),
                 Closed(7, 14, 0, Some("no healthy upstream"), 1099)],
            vec!["req! Call Check", "Pause", "Pause", "req! Resume"],
            vec!["headers", "call(failed 14,true,false)"]),
        ("a failure at the deadline is a timeout (clock)",
            calls(None),
            vec![hdrs(true), Dispatched(7, 1000), Closed(7, 14, 0, None, 1100)],
            vec!["req! Call Check", "Pause", "req! Resume"],
            vec!["headers", "call(failed 14,true,true)"]),
        ("Envoy's own timeout reply is a timeout (message), before the deadline by the clock",
            calls(None),
            vec![hdrs(true), Dispatched(7, 1000),
                 Closed(7, 14, 0, Some("upstream request timeout{response_timeout}"), 1001)],
            vec!["req! Call Check", "Pause", "req! Resume"],
            vec!["headers", "call(failed 14,true,true)"]),
        ("DEADLINE_EXCEEDED is a timeout (status)",
            calls(None),
            vec![hdrs(true), Dispatched(7, 1000), Closed(7, 4, 0, None, 1001)],
            vec!["req! Call Check", "Pause", "req! Resume"],
            vec!["headers", "call(failed 4,true,true)"]),
        ("a call the proxy refuses to send: the hook sees it at once, the request is not held",
            calls(None),
            vec![hdrs(false), Refused(HostOp::GrpcCall), body(5, true)],
            vec!["req! Call Check", "req! Continue", "Continue"],
            vec!["headers", "call(failed 14,false,false)"]),
        ("an answer that cannot be read: a failed call (INTERNAL), late if past the deadline",
            calls(None),
            vec![hdrs(true), Dispatched(7, 1000), Closed(7, 0, 4, None, 1200),
                 Refused(HostOp::ReadCallAnswer)],
            vec!["req! Call Check", "Pause", "ReadCallAnswer 4", "req! Resume"],
            vec!["headers", "call(failed 13,true,true)"]),
        ("a held request that cannot be resumed is reset",
            calls(None),
            vec![hdrs(true), Dispatched(7, 0), Closed(7, 14, 0, None, 1), Refused(HostOp::ResumeRequest)],
            vec!["req! Call Check", "Pause", "req! Resume", "Reset"],
            vec!["headers", "call(failed 14,true,false)"]),
        ("the call hook's edits refused on a held request: 503",
            calls(None),
            vec![hdrs(true), Dispatched(7, 0), Closed(7, 14, 0, None, 1),
                 Refused(HostOp::EditRequestHeaders)],
            vec!["req! Call Check", "Pause", "req! Resume", "Reply 503"],
            vec!["headers", "call(failed 14,true,false)"]),
        ("the call hook asks for a body inspection: unsupported, 503",
            calls(Some(Decision::InspectBody)),
            vec![hdrs(false), Dispatched(7, 0), Closed(7, 0, 0, None, 1), Answer(0),
                 Refused(HostOp::GrpcCall)],
            vec!["req! Call Check", "Pause", "ReadCallAnswer 0", "req! Unsupported GrpcCall",
                 "Reply 503"],
            vec!["headers", "call(answer 0)"]),
        ("a call from the body hook: unsupported, 503",
            Script { body: calls::<false>(None).headers, ..inspect(10) },
            vec![hdrs(false), body(3, true), Read(3), Refused(HostOp::GrpcCall)],
            vec!["req! Continue", "ReadBody 3", "req! Unsupported GrpcCall", "Reply 503"],
            vec!["headers", "body(3,false)"]),
        ("a close or an answer with no call pending: nothing runs",
            Script::default(),
            vec![hdrs(true), Dispatched(7, 0), Closed(7, 0, 1, None, 1), Answer(1)],
            vec!["req! Continue", "Continue", "Pause", "Pause"], vec!["headers"]),
    ];
    check(cases);
}

#[test]
fn fail_open_filters() {
    #[rustfmt::skip]
    let cases: Vec<Case<true>> = vec![
        ("headers unreadable: forwarded as is",
            Script::default(), vec![Refused(HostOp::ReadHeaders), Body { size: 5, eos: true }],
            vec!["Continue", "Continue"], vec![]),
        ("an edit refused while holding the body: forwarded, no body hook",
            inspect_open(10),
            vec![Headers { eos: false }, Refused(HostOp::EditRequestHeaders), Body { size: 5, eos: true }],
            vec!["req! Continue", "Continue", "Continue"], vec!["headers"]),
        ("a body read refused: forwarded",
            inspect_open(10),
            vec![Headers { eos: false }, Body { size: 5, eos: true }, Refused(HostOp::ReadBody)],
            vec!["req! Continue", "ReadBody 5", "Continue"], vec!["headers"]),
        ("a refused reply still resets: a denial is never forwarded",
            Script { headers: deny(401), ..Script::default() },
            vec![Headers { eos: true }, Refused(HostOp::SendReply)],
            vec!["req? Reply 401", "Reset"], vec!["headers"]),
        ("the call hook's edits refused on a held request: resumed as is",
            calls(None),
            vec![Headers { eos: true }, Dispatched(7, 0), Closed(7, 14, 0, None, 1),
                 Refused(HostOp::EditRequestHeaders)],
            vec!["req! Call Check", "Pause", "req! Resume", "Resume"],
            vec!["headers", "call(failed 14,true,false)"]),
        ("the call hook asks for a second call: resumed as is",
            calls(calls::<true>(None).headers),
            vec![Headers { eos: true }, Dispatched(7, 0), Closed(7, 0, 1, None, 1), Answer(1),
                 Refused(HostOp::GrpcCall)],
            vec!["req! Call Check", "Pause", "ReadCallAnswer 1", "req! Unsupported GrpcCall",
                 "Resume"],
            vec!["headers", "call(answer 1)"]),
        ("a call refused, then its hook's edits refused: forwarded (not held, so no resume)",
            calls(None),
            vec![Headers { eos: false }, Refused(HostOp::GrpcCall), Refused(HostOp::EditRequestHeaders)],
            vec!["req! Call Check", "req! Continue", "Continue"],
            vec!["headers", "call(failed 14,false,false)"]),
        ("a call from the body hook: forwarded",
            Script { body: calls::<true>(None).headers, ..inspect_open(10) },
            vec![Headers { eos: false }, Body { size: 3, eos: true }, Read(3), Refused(HostOp::GrpcCall)],
            vec!["req! Continue", "ReadBody 3", "req! Unsupported GrpcCall", "Continue"],
            vec!["headers", "body(3,false)"]),
    ];
    check(cases);
}

#[test]
fn hooks_see_their_own_edits_in_the_step() {
    let filter = Rc::new(inspect(10));
    let mut stream = HttpStream::new(filter);
    let step = stream.on_request_headers(RequestBuilder::get("/").build(), false);
    let edits = step.edits.expect("edits");
    assert_eq!(edits.ops.set, vec![("x-seen".into(), "headers".into())]);
    assert!(matches!(stream.phase(), Phase::Buffering(_)));
    stream.on_request_body(3, true);
    assert!(matches!(
        stream.phase(),
        Phase::Reading(_, Truncated::Known(false))
    ));
    let step = stream.on_body_read(b"abc".to_vec());
    assert_eq!(
        step.edits.expect("edits").ops.set,
        vec![("x-seen".into(), "body".into())]
    );
    assert!(matches!(stream.phase(), Phase::Headers));
}

#[test]
fn host_op_names_are_their_debug_forms() {
    use HostOp::*;
    for op in [
        ReadConfig,
        ReadHeaders,
        EditRequestHeaders,
        EditResponseHeaders,
        ReadBody,
        SendReply,
        ResetStream,
        Property,
        Metric,
        Clock,
        GrpcCall,
        ReadCallAnswer,
        ResumeRequest,
    ] {
        assert_eq!(op.name(), format!("{op:?}"));
    }
}
