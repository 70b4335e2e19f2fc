//! Server cases: each captured request sent to erlboot's server session, whose reply must be
//! the captured reply's bytes.
//!
//! One session per captured connection takes the connection's requests in order, so what a
//! connection carries from request to request (the client's encoding, the archives it has
//! opened) carries here too. Each question the session asks is answered with what the capture's
//! server found for that very request, or, when the capture lost that reply, from the
//! capture's whole file tree.

use erlboot::etf::{Decoder, Limits, Term};
use erlboot::proto::frame::{encode_frame, HEADER_LEN};
use erlboot::proto::{Reply, Request};
use erlboot::server::{FileAnswer, FileQuestion, FileSource, Reuse, Session, SessionConfig};
use erlboot::time::Instant;

use crate::case::{CaseId, Exchange, Kind, Outcome, Verdict};
use crate::pairing::{self, Pair, Unanswered};
use crate::rebuild::{as_source_answer, captured_answer};

use super::{Recording, IN_PROCESS};

/// The server cases of a recording, judged against erlboot's session in process.
pub fn judge(recording: &Recording) -> Vec<Verdict> {
    let mut out = Vec::new();
    for session in &recording.transcript.sessions {
        if session.connection.is_none() {
            continue;
        }
        let mut server = Session::new(SessionConfig::default(), Instant::ZERO);
        for pair in pairing::pairs(session) {
            let number = out.len() as u32 + 1;
            let id = CaseId {
                capture: recording.name.clone(),
                kind: Kind::Server,
                number,
            };
            out.push(judge_pair(recording, &mut server, &pair, id));
        }
    }
    out
}

fn judge_pair(recording: &Recording, server: &mut Session, pair: &Pair, id: CaseId) -> Verdict {
    let verdict = |outcome, summary: String, detail: &str, exchange| Verdict {
        id: id.clone(),
        target: IN_PROCESS.into(),
        outcome,
        summary,
        detail: detail.into(),
        exchange,
    };
    let Some(request) = &pair.request else {
        let reply = pair.reply.as_ref().map(|r| r.payload.clone());
        let exchange = Exchange {
            sent: Vec::new(),
            expected: reply,
            actual: None,
        };
        let summary = format!("reply {}", exchange.expected_text());
        return verdict(
            Outcome::Unsupported,
            summary,
            "the request this reply answers was lost in a capture gap",
            Some(exchange),
        );
    };
    let summary = crate::case::payload_text(&request.payload);
    let actual = serve(recording, server, pair, &request.payload);
    let exchange = Exchange {
        sent: request.payload.clone(),
        expected: pair.reply.as_ref().map(|r| r.payload.clone()),
        actual: actual.clone(),
    };
    if pair.reply.is_none() {
        let (outcome, detail) = match pair.unanswered {
            Some(Unanswered::LostInGap) => {
                (Outcome::Unsupported, "the reply was lost in a capture gap")
            }
            _ if is_bad_argument(request.request.as_ref()) => (Outcome::NonStrict, BAD_ARGUMENT),
            _ => (
                Outcome::Info,
                "the capture shows no reply (the connection or the capture ended first)",
            ),
        };
        return verdict(outcome, summary, detail, Some(exchange));
    }
    let Some(first) = exchange.first_difference() else {
        return verdict(Outcome::Pass, summary, "", Some(exchange));
    };
    let expected = exchange.expected.as_deref().unwrap_or_default();
    let actual = exchange.actual.as_deref().unwrap_or_default();
    if let Some(difference) = documented_difference(request.request.as_ref(), expected, actual) {
        return verdict(Outcome::NonStrict, summary, difference, Some(exchange));
    }
    let detail = format!("the reply differs from OTP's at byte {first}");
    verdict(Outcome::Fail, summary, &detail, Some(exchange))
}

/// The reply payload the session sends for one request frame, answering its question (if it
/// asks one) with what the capture's server found.
fn serve(
    recording: &Recording,
    server: &mut Session,
    pair: &Pair,
    payload: &[u8],
) -> Option<Vec<u8>> {
    let mut frame = Vec::with_capacity(HEADER_LEN + payload.len());
    encode_frame(payload, &mut frame).expect("a captured frame's payload fits a frame");
    server.handle_data(Instant::ZERO, &frame);
    loop {
        if let Some(transmit) = server.poll_transmit() {
            let bytes = transmit.to_vec();
            return Some(bytes[HEADER_LEN.min(bytes.len())..].to_vec());
        }
        let question = server.poll_question()?;
        let answer = answer_for(recording, pair, &question);
        server.handle_answer(Instant::ZERO, answer);
    }
}

/// The capture's own answer to this request when it asked the same question, else the
/// recording's file tree's.
fn answer_for(recording: &Recording, pair: &Pair, question: &FileQuestion) -> FileAnswer {
    let own = pair
        .request
        .as_ref()
        .and_then(|r| r.request.as_ref())
        .zip(pair.reply.as_ref().and_then(|r| r.reply.as_ref()))
        .and_then(|(request, reply)| captured_answer(request, reply))
        .filter(|(q, _)| *q == question.question)
        .and_then(|(_, answer)| as_source_answer(&answer));
    match own {
        Some(result) => FileAnswer {
            result,
            reuse: Reuse::Never,
            version: None,
        },
        None => recording.files.answer(question),
    }
}

/// The documented difference on a command whose argument is not a file name.
pub(crate) const BAD_ARGUMENT: &str = "OTP's server crashes the connection on a command whose \
    argument is not a file name; erlboot answers {Command,{error,badarg}} and keeps it";

pub(crate) fn is_bad_argument(request: Option<&Request>) -> bool {
    matches!(request, Some(Request::BadArgument { .. }))
}

/// The deliberate difference from OTP (README, "Where erlboot serve differs") a reply shows,
/// if it shows one.
pub(crate) fn documented_difference(
    request: Option<&Request>,
    expected: &[u8],
    actual: &[u8],
) -> Option<&'static str> {
    let decoder = Decoder::new(Limits::reply());
    let read = |payload: &[u8]| decoder.decode_prefix(payload).ok().map(|(t, _)| t);
    let (expected, actual) = (read(expected)?, read(actual)?);
    let badarg_with = |term: &Term| match Reply::from_term(term.clone()) {
        Reply::Error(reason) => match &reason.0 {
            Term::Tuple(e) if e.len() == 2 && e[0].as_atom() == Some("badarg") => {
                Some(e[1].clone())
            }
            _ => None,
        },
        _ => None,
    };
    if request.is_none() || matches!(request, Some(Request::Unknown(_))) {
        if let (Some(_), Some(Term::List(trace))) = (badarg_with(&expected), badarg_with(&actual)) {
            if trace.is_empty() {
                return Some(
                    "bytes that are not a term: OTP answers {error,{badarg,Stacktrace}} with its \
                     server's stack trace; erlboot answers {error,{badarg,[]}}",
                );
            }
        }
        if let Some(Request::Unknown(Term::Tuple(elems))) = request {
            if elems.len() == 2 && elems[0].as_atom() == Some("EXIT") {
                return Some(
                    "{'EXIT',X}: OTP's catch takes it for its own failure and answers \
                     {error,X}; erlboot answers {error,unknown_command}",
                );
            }
        }
    }
    None
}
