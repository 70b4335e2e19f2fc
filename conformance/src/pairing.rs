//! Requests paired with the replies that answer them, in a session's capture order.
//!
//! A boot server answers every request of a connection once, in order, so without gaps the
//! n-th reply answers the n-th request. A gap in the capture breaks that count: the lost bytes
//! may hold any number of frames. Pairing then leans on what OTP's client does —
//! `erl_prim_loader` sends one request and waits for its reply before the next — so once the
//! session has had a gap, a reply answers the newest request sent before it, and the older
//! requests still waiting had their replies in bytes the capture missed
//! ([`Unanswered::LostInGap`]). A reply that arrives with no request waiting answers a request
//! lost in a gap ([`Pair::request`] is `None`). (A gap shows at the first packet after it,
//! which may come after the client's next request: the reply decides, not the gap.)
//!
//! For a client that pipelines (sends before the previous reply), pairing is exact without
//! gaps, and after one errs towards calling an exchange lost rather than mispairing it.

use std::collections::VecDeque;
use std::time::Duration;

use erlboot::proto::{Reply, Request};

use crate::reassembly::Direction;
use crate::transcript::{Body, Session};

/// A request as captured.
#[derive(Clone, Debug, PartialEq)]
pub struct CapturedRequest {
    /// Time since the capture's first packet.
    pub at: Duration,
    /// The frame's payload.
    pub payload: Vec<u8>,
    /// The request, when its payload is a term.
    pub request: Option<Request>,
}

/// A reply as captured.
#[derive(Clone, Debug, PartialEq)]
pub struct CapturedReply {
    /// Time since the capture's first packet.
    pub at: Duration,
    /// The frame's payload.
    pub payload: Vec<u8>,
    /// The reply, when its payload is a term.
    pub reply: Option<Reply>,
}

/// One exchange of a session: a request and its reply, either of which the capture may have
/// lost.
#[derive(Clone, Debug, PartialEq)]
pub struct Pair {
    /// The request (`None`: lost in a gap; the reply is all there is).
    pub request: Option<CapturedRequest>,
    /// Its reply (`None`: none was captured).
    pub reply: Option<CapturedReply>,
    /// Why there is no reply, when there is none.
    pub unanswered: Option<Unanswered>,
}

/// Why a captured request has no captured reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unanswered {
    /// Its reply was in bytes the capture missed.
    LostInGap,
    /// The connection closed, or the capture ended, first (OTP's server closes the connection
    /// on some malformed requests).
    NoReply,
}

/// The exchanges of a session's connection, in the order of their requests (a reply whose
/// request was lost sits where it arrived).
pub fn pairs(session: &Session) -> Vec<Pair> {
    let mut out: Vec<Pair> = Vec::new();
    // Indexes into `out` of requests still waiting for a reply.
    let mut waiting: VecDeque<usize> = VecDeque::new();
    let mut gaps = false;
    // When the capture last missed bytes of the replies.
    let mut reply_gap: Option<Duration> = None;
    for message in &session.messages {
        match &message.body {
            Body::Request {
                payload, request, ..
            } => {
                waiting.push_back(out.len());
                out.push(Pair {
                    request: Some(CapturedRequest {
                        at: message.at,
                        payload: payload.clone(),
                        request: request.clone(),
                    }),
                    reply: None,
                    unanswered: None,
                });
            }
            Body::Reply { payload, reply, .. } => {
                let reply = CapturedReply {
                    at: message.at,
                    payload: payload.clone(),
                    reply: reply.clone(),
                };
                let answered = if gaps {
                    let newest = waiting.pop_back();
                    for i in waiting.drain(..) {
                        out[i].unanswered = Some(Unanswered::LostInGap);
                    }
                    newest
                } else {
                    waiting.pop_front()
                };
                match answered {
                    Some(i) => out[i].reply = Some(reply),
                    None => out.push(Pair {
                        request: None,
                        reply: Some(reply),
                        unanswered: None,
                    }),
                }
            }
            Body::Gap(_) | Body::Unfinished(_) => {
                gaps = true;
                if message.direction == Direction::ToClient {
                    reply_gap = Some(message.at);
                }
            }
            _ => {}
        }
    }
    for i in waiting {
        let sent = out[i].request.as_ref().map(|r| r.at);
        let lost = matches!((sent, reply_gap), (Some(sent), Some(gap)) if sent <= gap);
        out[i].unanswered = Some(if lost {
            Unanswered::LostInGap
        } else {
            Unanswered::NoReply
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddrV4;

    use erlboot::etf::{Decoder, Limits};

    use super::*;
    use crate::framing::{GapReport, Resync};
    use crate::reassembly::Mark;
    use crate::transcript::Message;

    fn at(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    fn request(ms: u64, name: &str) -> Message {
        let request = Request::Get(name.into());
        let payload = erlboot::etf::encode(&request.to_term(), erlboot::etf::Profile::Otp25)
            .expect("a request encodes");
        Message {
            at: at(ms),
            number: ms,
            direction: Direction::ToServer,
            body: Body::Request {
                offset: 0,
                term: Decoder::new(Limits::reply())
                    .decode_prefix(&payload)
                    .map(|(t, _)| t),
                request: Some(request),
                payload,
            },
        }
    }

    fn reply(ms: u64, contents: &str) -> Message {
        let reply = Reply::Get(Ok(contents.as_bytes().to_vec().into()));
        let payload = reply
            .encode(erlboot::etf::Profile::Otp25)
            .expect("a reply encodes");
        Message {
            at: at(ms),
            number: ms,
            direction: Direction::ToClient,
            body: Body::Reply {
                offset: 0,
                term: Decoder::new(Limits::reply())
                    .decode_prefix(&payload)
                    .map(|(t, _)| t),
                reply: Some(reply),
                payload,
            },
        }
    }

    fn gap(ms: u64, direction: Direction) -> Message {
        Message {
            at: at(ms),
            number: ms,
            direction,
            body: Body::Gap(GapReport {
                offset: 0,
                missing: Some(100),
                seen: Mark {
                    at: at(ms),
                    number: ms,
                },
                cut: None,
                skipped: 0,
                resync: Resync::Exact,
            }),
        }
    }

    fn session(messages: Vec<Message>) -> Session {
        let socket = SocketAddrV4::new([127, 0, 0, 1].into(), 1);
        Session {
            id: 1,
            discovery: None,
            connection: Some((socket, socket)),
            messages,
        }
    }

    /// Each pair as (requested name or "-", reply contents or why there is none).
    fn summary(pairs: &[Pair]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|p| {
                let name = match p.request.as_ref().and_then(|r| r.request.clone()) {
                    Some(Request::Get(name)) => name,
                    _ => "-".into(),
                };
                let reply = match (&p.reply, p.unanswered) {
                    (Some(r), _) => match &r.reply {
                        Some(Reply::Get(Ok(b))) => String::from_utf8_lossy(b).into_owned(),
                        _ => "?".into(),
                    },
                    (None, Some(Unanswered::LostInGap)) => "lost".into(),
                    (None, Some(Unanswered::NoReply)) => "none".into(),
                    (None, None) => "missing".into(),
                };
                (name, reply)
            })
            .collect()
    }

    fn expect(pairs: &[Pair], want: &[(&str, &str)]) {
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(summary(pairs), want);
    }

    #[test]
    fn without_gaps_the_nth_reply_answers_the_nth_request_even_pipelined() {
        let s = session(vec![
            request(1, "a"),
            request(2, "b"),
            reply(3, "A"),
            reply(4, "B"),
            request(5, "c"),
        ]);
        expect(&pairs(&s), &[("a", "A"), ("b", "B"), ("c", "none")]);
    }

    #[test]
    fn a_gap_in_the_replies_loses_the_waiting_requests_answers_only() {
        let s = session(vec![
            request(1, "a"),
            reply(2, "A"),
            request(3, "b"),
            gap(4, Direction::ToClient),
            request(5, "c"),
            reply(6, "C"),
        ]);
        expect(&pairs(&s), &[("a", "A"), ("b", "lost"), ("c", "C")]);
    }

    #[test]
    fn a_gap_seen_after_the_next_request_loses_only_the_older_reply() {
        // The gap shows at the packet after it, which follows the client's next request.
        let s = session(vec![
            request(1, "a"),
            request(2, "b"),
            gap(3, Direction::ToClient),
            reply(3, "B"),
            request(4, "c"),
        ]);
        expect(&pairs(&s), &[("a", "lost"), ("b", "B"), ("c", "none")]);
    }

    #[test]
    fn a_request_waiting_at_a_reply_gap_at_the_end_lost_its_reply() {
        let s = session(vec![request(1, "a"), gap(2, Direction::ToClient)]);
        expect(&pairs(&s), &[("a", "lost")]);
    }

    #[test]
    fn a_gap_in_the_requests_leaves_the_waiting_request_its_reply() {
        let s = session(vec![
            request(1, "a"),
            gap(2, Direction::ToServer),
            reply(3, "A"),
        ]);
        expect(&pairs(&s), &[("a", "A")]);
    }

    #[test]
    fn a_reply_to_a_request_lost_in_a_gap_stands_alone() {
        let s = session(vec![
            request(1, "a"),
            reply(2, "A"),
            gap(3, Direction::ToServer),
            reply(4, "B"),
            request(5, "c"),
            reply(6, "C"),
        ]);
        expect(&pairs(&s), &[("a", "A"), ("-", "B"), ("c", "C")]);
    }
}
