//! Captured sessions replayed over real TCP against a running boot server, and its replies
//! judged against the captured ones.
//!
//! Each captured connection becomes one connection to the target, its requests sent one at a
//! time, each reply read before the next request, as OTP's client does. Where the target
//! closes the connection (OTP's server does on some malformed requests), the next request
//! goes on a new one. A server on another machine cannot give the same inodes, devices,
//! owners or times, nor list a directory in the same order, nor have the same working
//! directory: replies that differ only there are Info, not Fail.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use erlboot::etf::{Decoder, Limits};
use erlboot::proto::discovery::Answer;
use erlboot::proto::frame::{encode_frame, HEADER_LEN};
use erlboot::proto::{Access, FileInfo, FileType, Reply};

use crate::case::{CaseId, Exchange, Kind, Outcome, Verdict};
use crate::pairing::{self, Pair, Unanswered};
use crate::suite::discovery::{self, Silence};
use crate::suite::server::{documented_difference, is_bad_argument, BAD_ARGUMENT};
use crate::suite::Recording;

/// How long to wait for a connection or a reply.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// How long to wait for an EBOOTR before calling it silence.
pub const SILENCE: Duration = Duration::from_millis(300);

/// Where to replay, and what to call it in reports.
#[derive(Clone, Debug)]
pub struct Target {
    /// The name in reports: `otp`, `erlboot`, or the address.
    pub name: String,
    /// The server's TCP address.
    pub tcp: SocketAddr,
    /// Where it answers discovery (its UDP port 4368), if discovery is replayed too.
    pub udp: Option<SocketAddr>,
}

/// The server cases of a recording, replayed against a live target, and its discovery cases
/// when the target has a discovery address.
pub fn judge(recording: &Recording, target: &Target) -> Vec<Verdict> {
    let mut out = judge_server(recording, target);
    if let Some(udp) = target.udp {
        out.extend(judge_discovery(recording, target, udp));
    }
    out
}

/// Every captured EBOOTQ sent to the target: it must answer as OTP did, with its own TCP port,
/// or stay silent where OTP stayed silent for a version it does not serve.
fn judge_discovery(recording: &Recording, target: &Target, udp: SocketAddr) -> Vec<Verdict> {
    discovery::cases(recording)
        .into_iter()
        .map(|mut case| {
            if let Some(info) = case.silence.and_then(Silence::info) {
                let mut verdict = discovery::judge_answer(&case, &target.name, None);
                verdict.detail = info.to_owned();
                return verdict;
            }
            // The target announces its own port.
            if let Some((_, answer)) = &mut case.answer {
                if let Ok(mut announced) = Answer::parse(answer) {
                    announced.port = target.tcp.port();
                    *answer = announced.to_bytes();
                }
            }
            let actual = match ask(udp, &case.sent) {
                Ok(actual) => actual,
                Err(e) => {
                    let mut verdict = discovery::judge_answer(&case, &target.name, None);
                    verdict.outcome = Outcome::Fail;
                    verdict.detail = format!("the target could not be asked: {e}");
                    return verdict;
                }
            };
            discovery::judge_answer(&case, &target.name, actual)
        })
        .collect()
}

/// Sends one datagram and waits [`SILENCE`] for an answer.
fn ask(udp: SocketAddr, datagram: &[u8]) -> io::Result<Option<Vec<u8>>> {
    let socket = UdpSocket::bind(("0.0.0.0", 0))?;
    socket.set_read_timeout(Some(SILENCE))?;
    ask_on(&socket, udp, datagram)
}

/// Sends one datagram from `socket` and waits its read timeout for an answer.
fn ask_on(socket: &UdpSocket, udp: SocketAddr, datagram: &[u8]) -> io::Result<Option<Vec<u8>>> {
    socket.send_to(datagram, udp)?;
    let mut buffer = [0u8; 512];
    match socket.recv_from(&mut buffer) {
        Ok((n, _)) => Ok(Some(buffer[..n].to_vec())),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The server cases of a recording, replayed over TCP against a live target.
fn judge_server(recording: &Recording, target: &Target) -> Vec<Verdict> {
    let mut out = Vec::new();
    for session in &recording.transcript.sessions {
        if session.connection.is_none() {
            continue;
        }
        let mut connection: Option<TcpStream> = None;
        for pair in pairing::pairs(session) {
            let id = CaseId {
                capture: recording.name.clone(),
                kind: Kind::Server,
                number: out.len() as u32 + 1,
            };
            out.push(judge_pair(&mut connection, target, &pair, id));
        }
    }
    out
}

fn judge_pair(
    connection: &mut Option<TcpStream>,
    target: &Target,
    pair: &Pair,
    id: CaseId,
) -> Verdict {
    let verdict = |outcome, summary: String, detail: String, exchange| Verdict {
        id: id.clone(),
        target: target.name.clone(),
        outcome,
        summary,
        detail,
        exchange,
    };
    let Some(request) = &pair.request else {
        return verdict(
            Outcome::Unsupported,
            "a reply whose request was lost".into(),
            "the request this reply answers was lost in a capture gap".into(),
            None,
        );
    };
    let summary = crate::case::payload_text(&request.payload);
    let actual = match exchange_over(connection, target.tcp, &request.payload) {
        Ok(reply) => reply,
        Err(e) => {
            *connection = None;
            let detail = format!("the target could not be asked: {e}");
            return verdict(Outcome::Fail, summary, detail, None);
        }
    };
    let exchange = Exchange {
        sent: request.payload.clone(),
        expected: pair.reply.as_ref().map(|r| r.payload.clone()),
        actual,
    };
    if pair.reply.is_none() && pair.unanswered == Some(Unanswered::LostInGap) {
        let detail = "the reply was lost in a capture gap".into();
        return verdict(Outcome::Unsupported, summary, detail, Some(exchange));
    }
    let Some(at) = exchange.first_difference() else {
        return verdict(Outcome::Pass, summary, String::new(), Some(exchange));
    };
    let (expected, actual) = (
        exchange.expected.as_deref().unwrap_or_default(),
        exchange.actual.as_deref().unwrap_or_default(),
    );
    if let Some(difference) = documented_difference(request.request.as_ref(), expected, actual) {
        return verdict(
            Outcome::NonStrict,
            summary,
            difference.into(),
            Some(exchange),
        );
    }
    if exchange.expected.is_none() {
        let (outcome, detail) = if is_bad_argument(request.request.as_ref()) {
            (Outcome::NonStrict, BAD_ARGUMENT.to_owned())
        } else {
            (
                Outcome::Fail,
                "OTP's server sent no reply; the target did".to_owned(),
            )
        };
        return verdict(outcome, summary, detail, Some(exchange));
    }
    if let Some(why) = machine_dependent(expected, actual) {
        return verdict(Outcome::Info, summary, why.into(), Some(exchange));
    }
    let detail = format!("the reply differs from OTP's at byte {at}");
    verdict(Outcome::Fail, summary, detail, Some(exchange))
}

/// Sends one request frame and reads one reply frame; `None` when the target closed the
/// connection instead of answering.
fn exchange_over(
    connection: &mut Option<TcpStream>,
    server: SocketAddr,
    payload: &[u8],
) -> io::Result<Option<Vec<u8>>> {
    if connection.is_none() {
        let stream = TcpStream::connect_timeout(&server, TIMEOUT)?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        stream.set_nodelay(true)?;
        *connection = Some(stream);
    }
    let stream = connection.as_mut().expect("connected");
    let mut frame = Vec::with_capacity(HEADER_LEN + payload.len());
    encode_frame(payload, &mut frame).expect("a captured frame's payload fits a frame");
    if stream.write_all(&frame).is_err() {
        *connection = None;
        return Ok(None);
    }
    let mut header = [0u8; HEADER_LEN];
    match stream.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            *connection = None;
            return Ok(None);
        }
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
            *connection = None;
            return Ok(None);
        }
        Err(e) => return Err(e),
    }
    let mut reply = vec![0u8; u32::from_be_bytes(header) as usize];
    stream.read_exact(&mut reply)?;
    Ok(Some(reply))
}

/// Why two replies that differ still say the same on another machine, if they do.
pub fn machine_dependent(expected: &[u8], actual: &[u8]) -> Option<&'static str> {
    let decoder = Decoder::new(Limits::reply());
    let read = |payload: &[u8]| {
        decoder
            .decode_prefix(payload)
            .ok()
            .map(|(t, _)| Reply::from_term(t))
    };
    match (read(expected)?, read(actual)?) {
        (Reply::ReadFileInfo(Ok(a)), Reply::ReadFileInfo(Ok(b)))
        | (Reply::ReadLinkInfo(Ok(a)), Reply::ReadLinkInfo(Ok(b)))
            if portable(&a) == portable(&b) =>
        {
            Some("the file info differs only in what belongs to the machine (times, inode, device, owner, links)")
        }
        (Reply::ListDir(Ok(mut a)), Reply::ListDir(Ok(mut b))) => {
            a.sort();
            b.sort();
            (a == b).then_some("the same names, listed in another order (the file system's)")
        }
        (Reply::GetCwd(Ok(_)), Reply::GetCwd(Ok(_))) => {
            Some("another working directory (the server's own)")
        }
        _ => None,
    }
}

/// What a file info says that a copy of the file on another machine says too: a directory's
/// size is its file system's.
fn portable(info: &FileInfo) -> (Option<u64>, FileType, Access, u32) {
    let size = (info.file_type != FileType::Directory).then_some(info.size);
    (size, info.file_type, info.access, info.mode)
}

/// Asks `server` (its UDP port 4368) for its TCP port with an EBOOTQ for `version`, as a
/// client would; `None` when nothing answers within [`TIMEOUT`].
pub fn discover(server: SocketAddr, version: &str) -> io::Result<Option<u16>> {
    let socket = UdpSocket::bind(("0.0.0.0", 0))?;
    socket.set_read_timeout(Some(Duration::from_millis(500)))?;
    let query = erlboot::proto::discovery::Query::new(version.as_bytes().to_vec()).to_bytes();
    for _ in 0..(TIMEOUT.as_millis() / 500) {
        let answer = ask_on(&socket, server, &query)?;
        if let Some(answer) = answer.and_then(|a| Answer::parse(&a).ok()) {
            return Ok(Some(answer.port));
        }
    }
    Ok(None)
}
