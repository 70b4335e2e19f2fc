//! Transcripts as text a person reads (one Erlang term per line) or as JSON lines.
//!
//! Text: `TIME sSESSION DIR KIND TERM`, e.g.
//! `0.503598 s1 c2s request {get,"/usr/lib/erlang/bin/start.boot"}`. JSON: one object per
//! line with `time` (seconds since the first packet), `session`, `dir` (`c2s`/`s2c`), `kind`,
//! `term` (the same Erlang text) and `packet`, plus what the kind adds (`bytes`, `port`,
//! `missing`, ...). Binaries longer than [`BINARY_SHOWN`] bytes are shown as `<<N bytes>>`.

use std::fmt::Write as _;
use std::net::SocketAddrV4;

use erlboot::etf::Term;
use serde_json::{json, Map, Value};

use crate::transcript::{Body, Close, Message, Transcript};

/// Binaries up to this many bytes are printed whole.
pub const BINARY_SHOWN: usize = 64;

/// A term as Erlang text, with binaries over [`BINARY_SHOWN`] bytes summarised.
pub fn term_text(term: &Term) -> String {
    let mut out = String::new();
    write_term(&mut out, term);
    out
}

fn has_long_binary(term: &Term) -> bool {
    match term {
        Term::Binary(b) => b.len() > BINARY_SHOWN,
        Term::Tuple(elems) | Term::List(elems) => elems.iter().any(has_long_binary),
        Term::ImproperList(elems, tail) => {
            elems.iter().any(has_long_binary) || has_long_binary(tail)
        }
        Term::Map(pairs) => pairs
            .iter()
            .any(|(k, v)| has_long_binary(k) || has_long_binary(v)),
        _ => false,
    }
}

fn write_term(out: &mut String, term: &Term) {
    if !has_long_binary(term) {
        let _ = write!(out, "{term}");
        return;
    }
    let seq = |out: &mut String, elems: &[Term]| {
        for (i, e) in elems.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_term(out, e);
        }
    };
    match term {
        Term::Binary(b) => {
            let _ = write!(out, "<<{} bytes>>", b.len());
        }
        Term::Tuple(elems) => {
            out.push('{');
            seq(out, elems);
            out.push('}');
        }
        Term::List(elems) => {
            out.push('[');
            seq(out, elems);
            out.push(']');
        }
        Term::ImproperList(elems, tail) => {
            out.push('[');
            seq(out, elems);
            out.push('|');
            write_term(out, tail);
            out.push(']');
        }
        Term::Map(pairs) => {
            out.push_str("#{");
            for (i, (k, v)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_term(out, k);
                out.push_str(" => ");
                write_term(out, v);
            }
            out.push('}');
        }
        other => {
            let _ = write!(out, "{other}");
        }
    }
}

/// Raw bytes as an Erlang binary: printable ASCII runs quoted, other bytes as numbers, e.g.
/// `<<"EBOOTR",0,181,39,"13.1.5">>`; over [`BINARY_SHOWN`] bytes, `<<N bytes>>`.
pub fn bytes_text(bytes: &[u8]) -> String {
    if bytes.len() > BINARY_SHOWN {
        return format!("<<{} bytes>>", bytes.len());
    }
    let mut parts: Vec<String> = Vec::new();
    let mut text = String::new();
    for &b in bytes {
        if (0x20..0x7F).contains(&b) {
            if b == b'"' || b == b'\\' {
                text.push('\\');
            }
            text.push(char::from(b));
        } else {
            if !text.is_empty() {
                parts.push(format!("\"{}\"", std::mem::take(&mut text)));
            }
            parts.push(b.to_string());
        }
    }
    if !text.is_empty() {
        parts.push(format!("\"{text}\""));
    }
    format!("<<{}>>", parts.join(","))
}

fn endpoint(a: SocketAddrV4) -> String {
    let [x, y, z, w] = a.ip().octets();
    format!("{{{{{x},{y},{z},{w}}},{}}}", a.port())
}

/// The message as Erlang text.
pub fn message_term(message: &Message) -> String {
    match &message.body {
        Body::Answer { answer: Ok(a), .. } => {
            // Field by field: the port's bytes may happen to be printable.
            let [hi, lo] = a.port.to_be_bytes();
            let version = bytes_text(&a.version);
            let version = version.trim_start_matches("<<").trim_end_matches(">>");
            let sep = if version.is_empty() { "" } else { "," };
            format!("<<\"EBOOTR\",{},{hi},{lo}{sep}{version}>>", a.priority)
        }
        Body::Query { payload, .. } | Body::Answer { payload, .. } => bytes_text(payload),
        Body::Open {
            client,
            server,
            handshake,
        } => format!(
            "{{open,{},{},{}}}",
            endpoint(*client),
            endpoint(*server),
            if *handshake { "syn" } else { "no_syn" }
        ),
        Body::Close(Close::Fin) => "{close,fin}".to_string(),
        Body::Close(Close::Rst) => "{close,rst}".to_string(),
        Body::Request { term, payload, .. } | Body::Reply { term, payload, .. } => match term {
            Ok(term) => term_text(term),
            Err(_) => bytes_text(payload),
        },
        Body::Gap(gap) => {
            let missing = gap.missing.map_or("unknown".to_string(), |m| m.to_string());
            let cut = match gap.cut {
                None => "none".to_string(),
                Some(cut) => format!(
                    "{{{},{}}}",
                    cut.offset,
                    cut.declared
                        .map_or("unknown".to_string(), |d| d.to_string())
                ),
            };
            format!(
                "{{gap,[{{offset,{}}},{{missing,{missing}}},{{cut_frame,{cut}}},{{skipped,{}}},{{resync,{}}}]}}",
                gap.offset,
                gap.skipped,
                gap.resync.name()
            )
        }
        Body::Unfinished(u) => format!(
            "{{unfinished_frame,[{{offset,{}}},{{have,{}}},{{want,{}}}]}}",
            u.offset,
            u.have,
            u.want.map_or("unknown".to_string(), |w| w.to_string())
        ),
    }
}

/// Seconds with microseconds, e.g. `0.503598`.
fn seconds(message: &Message) -> String {
    let micros = message.at.as_micros();
    format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

/// One text line (no newline).
pub fn text_line(session: usize, message: &Message) -> String {
    let mut line = format!(
        "{} s{session} {} {} {}",
        seconds(message),
        message.direction.label(),
        message.body.kind(),
        message_term(message)
    );
    match &message.body {
        Body::Request { term: Err(e), .. } | Body::Reply { term: Err(e), .. } => {
            let _ = write!(line, " % not a term: {e}");
        }
        Body::Answer { answer: Ok(a), .. } => {
            let _ = write!(
                line,
                " % priority {}, port {}, version {}",
                a.priority,
                a.port,
                bytes_text(&a.version)
            );
        }
        _ => {}
    }
    line
}

/// One JSON object (no newline).
pub fn json_line(session: usize, message: &Message) -> String {
    let mut object = Map::new();
    let micros = message.at.as_micros();
    object.insert("time".into(), json!(micros as f64 / 1e6));
    object.insert("session".into(), json!(session));
    object.insert("dir".into(), json!(message.direction.label()));
    object.insert("kind".into(), json!(message.body.kind()));
    object.insert("term".into(), json!(message_term(message)));
    object.insert("packet".into(), json!(message.number));
    match &message.body {
        Body::Query {
            from, to, query, ..
        } => {
            object.insert("from".into(), json!(from.to_string()));
            object.insert("to".into(), json!(to.to_string()));
            if let Ok(q) = query {
                object.insert("version".into(), json!(String::from_utf8_lossy(&q.version)));
            }
        }
        Body::Answer {
            from, to, answer, ..
        } => {
            object.insert("from".into(), json!(from.to_string()));
            object.insert("to".into(), json!(to.to_string()));
            if let Ok(a) = answer {
                object.insert("priority".into(), json!(a.priority));
                object.insert("port".into(), json!(a.port));
                object.insert("version".into(), json!(String::from_utf8_lossy(&a.version)));
            }
        }
        Body::Open {
            client,
            server,
            handshake,
        } => {
            object.insert("client".into(), json!(client.to_string()));
            object.insert("server".into(), json!(server.to_string()));
            object.insert("handshake".into(), json!(handshake));
        }
        Body::Close(how) => {
            object.insert(
                "how".into(),
                json!(match how {
                    Close::Fin => "fin",
                    Close::Rst => "rst",
                }),
            );
        }
        Body::Request {
            offset,
            payload,
            term,
            ..
        }
        | Body::Reply {
            offset,
            payload,
            term,
            ..
        } => {
            object.insert("offset".into(), json!(offset));
            object.insert("bytes".into(), json!(payload.len()));
            if let Err(e) = term {
                object.insert("error".into(), json!(e.to_string()));
            }
        }
        Body::Gap(gap) => {
            object.insert("offset".into(), json!(gap.offset));
            object.insert("missing".into(), json!(gap.missing));
            object.insert(
                "cut_frame".into(),
                gap.cut.map_or(
                    Value::Null,
                    |c| json!({"offset": c.offset, "declared": c.declared}),
                ),
            );
            object.insert("skipped".into(), json!(gap.skipped));
            object.insert("resync".into(), json!(gap.resync.name()));
        }
        Body::Unfinished(u) => {
            object.insert("offset".into(), json!(u.offset));
            object.insert("have".into(), json!(u.have));
            object.insert("want".into(), json!(u.want));
        }
    }
    Value::Object(object).to_string()
}

/// The output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// [`text_line`]s.
    Text,
    /// [`json_line`]s.
    Json,
}

/// Writes every message of the transcript, one line each, in capture order.
pub fn write(
    transcript: &Transcript,
    format: Format,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    for (session, message) in transcript.messages() {
        let line = match format {
            Format::Text => text_line(session, message),
            Format::Json => json_line(session, message),
        };
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// What reading skipped or could not read, one sentence each (empty when nothing was).
pub fn notes(transcript: &Transcript) -> Vec<String> {
    let stats = &transcript.stats;
    let numbers = |list: &[u64]| {
        let shown: Vec<String> = list.iter().take(20).map(u64::to_string).collect();
        let more = if list.len() > 20 { ", ..." } else { "" };
        format!("{}{more}", shown.join(", "))
    };
    let mut notes = Vec::new();
    if !stats.truncated.is_empty() {
        notes.push(format!(
            "{} packets cut by the snapshot length were skipped (packets {}); record with -s 0",
            stats.truncated.len(),
            numbers(&stats.truncated)
        ));
    }
    if !stats.fragments.is_empty() {
        notes.push(format!(
            "{} IP fragments were skipped (packets {})",
            stats.fragments.len(),
            numbers(&stats.fragments)
        ));
    }
    if !stats.malformed.is_empty() {
        let (first, why) = &stats.malformed[0];
        notes.push(format!(
            "{} packets have malformed headers and were skipped (first: packet {first}: {why})",
            stats.malformed.len()
        ));
    }
    if let Some(bytes) = stats.partial_tail {
        notes.push(format!(
            "the file ends with a partial record of {bytes} bytes (the capture was cut short)"
        ));
    }
    if stats.ipv6 > 0 {
        notes.push(format!("{} IPv6 packets were skipped", stats.ipv6));
    }
    if stats.unsupported_link > 0 || stats.unknown_interface > 0 {
        notes.push(format!(
            "{} packets of unsupported link types were skipped",
            stats.unsupported_link + stats.unknown_interface
        ));
    }
    let gaps: Vec<Option<u64>> = transcript
        .sessions
        .iter()
        .flat_map(|s| &s.messages)
        .filter_map(|m| match &m.body {
            Body::Gap(g) => Some(g.missing),
            _ => None,
        })
        .collect();
    let unseen_starts = gaps.iter().filter(|g| g.is_none()).count();
    let missed: Vec<u64> = gaps.iter().flatten().copied().collect();
    if !missed.is_empty() {
        notes.push(format!(
            "{} gaps in TCP streams ({} bytes missed by the capture)",
            missed.len(),
            missed.iter().sum::<u64>()
        ));
    }
    if unseen_starts > 0 {
        notes.push(format!(
            "{unseen_starts} TCP streams began before the capture (read from their first safe frame)"
        ));
    }
    if transcript.sessions.is_empty() && transcript.other_connections > 0 {
        notes.push(format!(
            "no boot traffic found, but {} TCP connections: the capture has no EBOOTR naming \
             a boot server's port; give it with --port",
            transcript.other_connections
        ));
    }
    notes
}
