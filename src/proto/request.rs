//! Requests, client to server: `{get,File}`, `{list_dir,Dir}`, `{read_file_info,File}`,
//! `{read_link_info,File}`, `get_cwd` and `{get_cwd,Drive}`.

use std::cell::RefCell;

use bytes::{Bytes, BytesMut};

use crate::etf::{
    self, latin1_to_string, tag, DecodeError, Decoder, Emitter, EncodeError, Profile, Term,
};

use super::frame::{frame_into, frame_of};

use super::Command;

/// The block request frames are cut from ([`Request::frame_bytes`]).
const FRAME_BLOCK: usize = 16 * 1024;

thread_local! {
    /// A buffer to encode a request in, and the block its frame is then copied into.
    static FRAMES: RefCell<(Vec<u8>, BytesMut)> = RefCell::new((Vec::new(), BytesMut::new()));
}

/// A request as the server understands it.
///
/// File names are Erlang strings (lists of code points). A name sent as a deep list of
/// characters, which OTP's file layer flattens, is flattened here too; OTP clients always send
/// flat strings, so their requests re-encode byte for byte.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    /// `{get, File}`.
    Get(String),
    /// `{list_dir, Dir}`.
    ListDir(String),
    /// `{read_file_info, File}`.
    ReadFileInfo(String),
    /// `{read_link_info, File}`.
    ReadLinkInfo(String),
    /// The bare atom `get_cwd`.
    GetCwd,
    /// `{get_cwd, Drive}`, e.g. `"c:"`; only meaningful on Windows.
    GetCwdDrive(String),
    /// A command of the right shape whose argument is not a file name, e.g. `{get,<<"/x">>}`
    /// or `{list_dir,42}` (OTP's server crashes the connection on these).
    BadArgument {
        /// The command named.
        command: Command,
        /// The argument given.
        argument: Term,
    },
    /// Any other term (OTP answers `{error,unknown_command}`).
    Unknown(Term),
}

/// A request and its frame, encoded once for one profile.
///
/// A client that sends the same requests again and again (the nodes of a simulated herd, each
/// replaying one recorded boot) shares the frames rather than encoding each request at every
/// send ([`crate::client::Loader::request_encoded`]).
#[derive(Clone, Debug, PartialEq)]
pub struct EncodedRequest {
    request: Request,
    profile: Profile,
    frame: Bytes,
}

impl EncodedRequest {
    /// `request` encoded as the profile's client sends it.
    pub fn new(request: Request, profile: Profile) -> Result<EncodedRequest, EncodeError> {
        let frame = Bytes::from(request.frame(profile)?);
        Ok(EncodedRequest {
            request,
            profile,
            frame,
        })
    }

    /// Each of `requests` encoded for `profile`, the frames cut from one allocation (sending
    /// one then moves one shared count, the same for every frame).
    pub fn all(requests: &[Request], profile: Profile) -> Result<Vec<EncodedRequest>, EncodeError> {
        let mut block = Vec::new();
        let mut scratch = Vec::new();
        let mut ends = Vec::with_capacity(requests.len());
        for request in requests {
            frame_into(&mut scratch, |out| request.encode_into(profile, out))?;
            block.extend_from_slice(&scratch);
            ends.push(block.len());
        }
        let block = Bytes::from(block);
        let starts = std::iter::once(0).chain(ends.iter().copied());
        Ok(requests
            .iter()
            .zip(starts.zip(ends.iter().copied()))
            .map(|(request, (start, end))| EncodedRequest {
                request: request.clone(),
                profile,
                frame: block.slice(start..end),
            })
            .collect())
    }

    /// The request.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// The profile it was encoded for.
    pub fn profile(&self) -> Profile {
        self.profile
    }

    /// Its `{packet,4}` frame, as [`Request::frame`] makes it.
    pub fn frame(&self) -> &Bytes {
        &self.frame
    }
}

impl Request {
    /// Reads a request from a frame's payload. Bytes after the term are ignored, as OTP's
    /// `binary_to_term/1` ignores them.
    pub fn decode(payload: &[u8], decoder: &Decoder) -> Result<Request, DecodeError> {
        if let Some(request) = Request::decode_flat(payload) {
            return Ok(request);
        }
        let (term, _) = decoder.decode_prefix(payload)?;
        Ok(Request::from_term(term))
    }

    /// The shape nearly every OTP request has, `{Command, "name"}` with the name as
    /// `STRING_EXT`, read straight from the bytes; `None` for anything else. The result is
    /// what the general path gives for the same bytes, without a term per character.
    fn decode_flat(payload: &[u8]) -> Option<Request> {
        let rest = payload.strip_prefix(&[tag::VERSION, tag::SMALL_TUPLE, 2])?;
        let (atom, rest) = match rest {
            [tag::ATOM, 0, len, rest @ ..] | [tag::SMALL_ATOM_UTF8, len, rest @ ..] => {
                (rest.get(..usize::from(*len))?, &rest[usize::from(*len)..])
            }
            _ => return None,
        };
        // Command names are ASCII, the same bytes in every atom encoding.
        let command = Command::from_atom(std::str::from_utf8(atom).ok()?)?;
        let [tag::STRING, hi, lo, rest @ ..] = rest else {
            return None;
        };
        let name = rest.get(..usize::from(u16::from_be_bytes([*hi, *lo])))?;
        Some(Request::for_command(command, latin1_to_string(name)))
    }

    /// `{Command, Name}`: the request of a command that takes a file name (`get_cwd` takes
    /// a drive).
    pub fn for_command(command: Command, name: String) -> Request {
        match command {
            Command::Get => Request::Get(name),
            Command::ListDir => Request::ListDir(name),
            Command::ReadFileInfo => Request::ReadFileInfo(name),
            Command::ReadLinkInfo => Request::ReadLinkInfo(name),
            Command::GetCwd => Request::GetCwdDrive(name),
        }
    }

    /// The ETF payload of this request, as the profile's `term_to_binary/1` encodes it.
    pub fn encode(&self, profile: Profile) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        self.encode_into(profile, &mut out)?;
        Ok(out)
    }

    /// The request as a `{packet,4}` frame, as the profile's client sends it.
    pub fn frame(&self, profile: Profile) -> Result<Vec<u8>, EncodeError> {
        frame_of(|out| self.encode_into(profile, out))
    }

    /// [`Request::frame`] as shared bytes, cut from a block this thread's frames share: a
    /// client sends a request per file and holds each only until its reply, so frames are
    /// cut one after another from one allocation, rather than each costing two (its buffer
    /// and the count a `Bytes` shares it by).
    pub fn frame_bytes(&self, profile: Profile) -> Result<Bytes, EncodeError> {
        FRAMES.with(|frames| {
            let (scratch, block) = &mut *frames.borrow_mut();
            frame_into(scratch, |out| self.encode_into(profile, out))?;
            if block.capacity() - block.len() < scratch.len() {
                *block = BytesMut::with_capacity(FRAME_BLOCK.max(scratch.len()));
            }
            block.extend_from_slice(scratch);
            Ok(block.split().freeze())
        })
    }

    /// Appends the payload to `out`. A client sends one request per file it loads, so the
    /// common shapes are written straight from the name, without a term per character.
    fn encode_into(&self, profile: Profile, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let (command, name) = match self {
            Request::Get(name) => (Command::Get, name),
            Request::ListDir(name) => (Command::ListDir, name),
            Request::ReadFileInfo(name) => (Command::ReadFileInfo, name),
            Request::ReadLinkInfo(name) => (Command::ReadLinkInfo, name),
            Request::GetCwdDrive(drive) => (Command::GetCwd, drive),
            Request::GetCwd | Request::BadArgument { .. } | Request::Unknown(_) => {
                return etf::encode_into(&self.to_term(), profile, out);
            }
        };
        let mut e = Emitter::new(profile, out);
        e.tuple(2);
        e.atom(command.atom());
        e.string(name)
    }

    /// Classifies a term.
    pub fn from_term(term: Term) -> Request {
        if term.as_atom() == Some("get_cwd") {
            return Request::GetCwd;
        }
        let Term::Tuple(mut elems) = term else {
            return Request::Unknown(term);
        };
        let command = match elems.as_slice() {
            [tag, _] => tag.as_atom().and_then(Command::from_atom),
            _ => None,
        };
        let Some(command) = command else {
            return Request::Unknown(Term::Tuple(elems));
        };
        let argument = elems.pop().expect("two elements");
        let Some(name) = file_name(&argument) else {
            return Request::BadArgument { command, argument };
        };
        Request::for_command(command, name)
    }

    /// The term on the wire.
    pub fn to_term(&self) -> Term {
        let tagged =
            |command: Command, argument: Term| Term::tuple([Term::atom(command.atom()), argument]);
        match self {
            Request::Get(name) => tagged(Command::Get, Term::string(name)),
            Request::ListDir(name) => tagged(Command::ListDir, Term::string(name)),
            Request::ReadFileInfo(name) => tagged(Command::ReadFileInfo, Term::string(name)),
            Request::ReadLinkInfo(name) => tagged(Command::ReadLinkInfo, Term::string(name)),
            Request::GetCwd => Term::atom("get_cwd"),
            Request::GetCwdDrive(drive) => tagged(Command::GetCwd, Term::string(drive)),
            Request::BadArgument { command, argument } => tagged(*command, argument.clone()),
            Request::Unknown(term) => term.clone(),
        }
    }

    /// The command this request names, if it names one.
    pub fn command(&self) -> Option<Command> {
        Some(match self {
            Request::Get(_) => Command::Get,
            Request::ListDir(_) => Command::ListDir,
            Request::ReadFileInfo(_) => Command::ReadFileInfo,
            Request::ReadLinkInfo(_) => Command::ReadLinkInfo,
            Request::GetCwd | Request::GetCwdDrive(_) => Command::GetCwd,
            Request::BadArgument { command, .. } => *command,
            Request::Unknown(_) => return None,
        })
    }

    /// The file name this request is about, if it has one.
    pub fn file_name(&self) -> Option<&str> {
        match self {
            Request::Get(name)
            | Request::ListDir(name)
            | Request::ReadFileInfo(name)
            | Request::ReadLinkInfo(name)
            | Request::GetCwdDrive(name) => Some(name),
            _ => None,
        }
    }
}

/// A file name from a string or a deep list of characters, the forms OTP's file layer accepts
/// as a name; `None` for anything else (binaries, atoms, integers, invalid code points).
fn file_name(term: &Term) -> Option<String> {
    fn flatten(term: &Term, out: &mut String) -> Option<()> {
        let Term::List(elems) = term else {
            return None;
        };
        for elem in elems {
            match elem {
                Term::Int(c) => out.push(u32::try_from(*c).ok().and_then(char::from_u32)?),
                list @ Term::List(_) => flatten(list, out)?,
                _ => return None,
            }
        }
        Some(())
    }
    let mut name = String::new();
    flatten(term, &mut name)?;
    Some(name)
}

#[cfg(test)]
mod tests {
    use erlboot_support::hex;

    use super::*;

    /// Frames cut from the shared block are the frames `frame` encodes, each left intact by
    /// those cut after it, across blocks, a frame longer than a block included.
    #[test]
    fn shared_frames_are_the_frames_and_stay_as_they_were() {
        let requests: Vec<Request> = (0..2_000)
            .map(|i| match i % 4 {
                0 => Request::Get(format!("/otp/lib/kernel-8.5/ebin/m{i}.beam")),
                1 => Request::ListDir(format!("/otp/lib/d{i}")),
                2 => Request::ReadFileInfo("é/ü".repeat(i % 7)),
                _ => Request::GetCwd,
            })
            .chain([Request::Get("x".repeat(3 * FRAME_BLOCK))])
            .collect();
        for profile in [Profile::Otp25, Profile::Otp26] {
            let frames: Vec<Bytes> = requests
                .iter()
                .map(|r| r.frame_bytes(profile).unwrap())
                .collect();
            for (request, frame) in requests.iter().zip(&frames) {
                assert_eq!(
                    frame[..],
                    request.frame(profile).unwrap()[..],
                    "{request:?}"
                );
            }
            // Cut one after another: nearly every frame starts where the one before ends.
            let adjacent = frames
                .windows(2)
                .filter(|w| w[0].as_ptr_range().end == w[1].as_ptr())
                .count();
            assert!(
                adjacent * 10 >= frames.len() * 9,
                "{adjacent} of {}",
                frames.len()
            );
        }
    }

    #[test]
    fn golden_get_request_otp25_and_otp29() {
        // PROTOCOL.md §5.4, frames without their 4-byte header.
        let otp25 = hex("83 68 02 64 00 03 67 65 74 6B 00 11 2F 74 6D 70 2F 62 73 2F 68 65 6C 6C 6F 2E 74 78 74");
        let otp29 = hex(
            "83 68 02 77 03 67 65 74 6B 00 11 2F 74 6D 70 2F 62 73 2F 68 65 6C 6C 6F 2E 74 78 74",
        );
        let request = Request::Get("/tmp/bs/hello.txt".into());
        let decoder = Decoder::default();
        assert_eq!(Request::decode(&otp25, &decoder).unwrap(), request);
        assert_eq!(Request::decode(&otp29, &decoder).unwrap(), request);
        assert_eq!(request.encode(Profile::Otp25).unwrap(), otp25);
        assert_eq!(request.encode(Profile::Otp26).unwrap(), otp29);
    }

    #[test]
    fn get_cwd_is_a_bare_atom() {
        let otp25 = hex("83 64 00 07 67 65 74 5F 63 77 64");
        assert_eq!(
            Request::decode(&otp25, &Decoder::default()).unwrap(),
            Request::GetCwd
        );
        assert_eq!(Request::GetCwd.encode(Profile::Otp25).unwrap(), otp25);
    }

    #[test]
    fn names_beyond_latin1_use_list_ext() {
        // PROTOCOL.md §5.2: "/tmp/€".
        let bytes = Request::ListDir("/tmp/€".into())
            .encode(Profile::Otp25)
            .unwrap();
        assert!(bytes.ends_with(&hex(
            "6C 00 00 00 06 61 2F 61 74 61 6D 61 70 61 2F 62 00 00 20 AC 6A"
        )));
    }

    #[test]
    fn frames_at_string_ext_s_limit_are_the_terms_encoding() {
        for len in [0, 1, 65_535, 65_536] {
            for name in ["a".repeat(len), "é".repeat(len)] {
                let request = Request::Get(name);
                let expected =
                    crate::proto::frame::encode_term_frame(&request.to_term(), Profile::Otp25);
                assert_eq!(request.frame(Profile::Otp25), expected, "{len}");
            }
        }
    }

    proptest::proptest! {
        /// The direct encoding is the term's, byte for byte, in both profiles: empty names,
        /// Latin-1, beyond Latin-1, and past `STRING_EXT`'s 65,535 characters.
        #[test]
        fn frames_are_the_terms_encoding(
            name in "[a-z/é€.]{0,12}",
            repeat in proptest::sample::select(vec![1usize, 5462, 5463]),
            command in 0..6usize,
            otp26 in proptest::bool::ANY,
        ) {
            let name = name.repeat(repeat);
            let request = match command {
                0 => Request::Get(name),
                1 => Request::ListDir(name),
                2 => Request::ReadFileInfo(name),
                3 => Request::ReadLinkInfo(name),
                4 => Request::GetCwdDrive(name),
                _ => Request::GetCwd,
            };
            let profile = if otp26 { Profile::Otp26 } else { Profile::Otp25 };
            let frame = request.frame(profile).unwrap();
            let expected = crate::proto::frame::encode_term_frame(&request.to_term(), profile).unwrap();
            proptest::prop_assert_eq!(frame, expected);
        }
    }

    #[test]
    fn classification() {
        let get = |arg: Term| Request::from_term(Term::tuple([Term::atom("get"), arg]));
        assert_eq!(
            get(Term::list([Term::string("/tmp/"), Term::string("x")])),
            Request::Get("/tmp/x".into())
        );
        assert!(matches!(
            get(Term::binary(&b"/x"[..])),
            Request::BadArgument {
                command: Command::Get,
                ..
            }
        ));
        assert!(matches!(get(Term::Int(42)), Request::BadArgument { .. }));
        assert!(matches!(
            get(Term::list([Term::Int(0xD800)])),
            Request::BadArgument { .. }
        ));
        assert!(matches!(
            Request::from_term(Term::atom("foo")),
            Request::Unknown(_)
        ));
        assert!(matches!(
            Request::from_term(Term::tuple([Term::atom("get")])),
            Request::Unknown(_)
        ));
        assert!(matches!(
            Request::from_term(Term::tuple([
                Term::atom("get"),
                Term::string("a"),
                Term::Int(1)
            ])),
            Request::Unknown(_)
        ));
        assert_eq!(
            Request::from_term(Term::tuple([Term::atom("get_cwd"), Term::string("c:")])),
            Request::GetCwdDrive("c:".into())
        );
    }

    #[test]
    fn trailing_bytes_are_ignored_like_otp() {
        let mut bytes = Request::Get("/x".into()).encode(Profile::Otp25).unwrap();
        bytes.extend_from_slice(b"junk");
        assert_eq!(
            Request::decode(&bytes, &Decoder::default()).unwrap(),
            Request::Get("/x".into())
        );
    }
}
