//! Properties of the codec over generated terms and messages: round trips under both profiles,
//! and the encoding rules each profile follows.

use erlboot_support::terms;

use erlboot::etf::{self, tag, Profile, Term};
use erlboot::proto::{Access, DateTime, FileInfo, FileType, Reason, Reply, Request};
use proptest::collection::vec;
use proptest::prelude::*;

fn first_tag(term: &Term, profile: Profile) -> u8 {
    etf::encode(term, profile).unwrap()[1]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn terms_round_trip_under_both_profiles(term in terms::term()) {
        for profile in [Profile::Otp25, Profile::Otp26] {
            let bytes = etf::encode(&term, profile).unwrap();
            prop_assert_eq!(etf::decode(&bytes).unwrap(), term.clone());
        }
    }

    #[test]
    fn profiles_differ_only_in_atoms_and_ports(term in terms::term()) {
        let otp25 = etf::decode(&etf::encode(&term, Profile::Otp25).unwrap()).unwrap();
        let otp26 = etf::decode(&etf::encode(&term, Profile::Otp26).unwrap()).unwrap();
        prop_assert_eq!(otp25, otp26);
    }

    #[test]
    fn atom_rules(atom in terms::atom()) {
        let utf8_len = atom.as_str().len();
        let term = Term::Atom(atom.clone());
        let utf8_tag = if utf8_len <= 255 { tag::SMALL_ATOM_UTF8 } else { tag::ATOM_UTF8 };
        let otp25 = if atom.is_latin1() { tag::ATOM } else { utf8_tag };
        prop_assert_eq!(first_tag(&term, Profile::Otp25), otp25);
        prop_assert_eq!(first_tag(&term, Profile::Otp26), utf8_tag);
    }

    #[test]
    fn integer_rules(term in terms::integer()) {
        let expected = match &term {
            Term::Int(0..=255) => tag::SMALL_INTEGER,
            Term::Int(i) if i32::try_from(*i).is_ok() => tag::INTEGER,
            Term::Int(_) => tag::SMALL_BIG,
            Term::Big(big) if big.magnitude.len() <= 255 => tag::SMALL_BIG,
            _ => tag::LARGE_BIG,
        };
        prop_assert_eq!(first_tag(&term, Profile::Otp25), expected);
    }

    #[test]
    fn string_rules(codes in vec(0..=0x10FFFFi64, 0..300)) {
        let term = Term::list(codes.iter().copied().map(Term::Int).collect::<Vec<_>>());
        let expected = if codes.is_empty() {
            tag::NIL
        } else if codes.iter().all(|c| *c <= 255) {
            tag::STRING
        } else {
            tag::LIST
        };
        prop_assert_eq!(first_tag(&term, Profile::Otp25), expected);
    }

    #[test]
    fn requests_round_trip(request in request(), profile in profile()) {
        let bytes = request.encode(profile).unwrap();
        let decoder = etf::Decoder::new(etf::Limits::request());
        prop_assert_eq!(Request::decode(&bytes, &decoder).unwrap(), request);
    }

    /// Damaged requests decode as the general term path decodes them, whatever shortcut the
    /// request decoder takes.
    #[test]
    fn request_decoding_agrees_with_the_term_path(
        request in request(),
        profile in profile(),
        cut in any::<prop::sample::Index>(),
        flip in any::<(prop::sample::Index, u8)>(),
    ) {
        let mut bytes = request.encode(profile).unwrap();
        let at = flip.0.index(bytes.len());
        bytes[at] ^= flip.1;
        bytes.truncate(1 + cut.index(bytes.len()));
        let decoder = etf::Decoder::new(etf::Limits::request());
        let general = decoder.decode_prefix(&bytes).map(|(term, _)| Request::from_term(term));
        prop_assert_eq!(Request::decode(&bytes, &decoder), general);
    }

    /// Replies are written straight to bytes; those must be the bytes of their term.
    #[test]
    fn replies_encode_as_their_terms(reply in reply(), profile in profile()) {
        prop_assert_eq!(reply.encode(profile).unwrap(), etf::encode(&reply.to_term(), profile).unwrap());
    }

    #[test]
    fn replies_round_trip(reply in reply(), profile in profile()) {
        let bytes = reply.encode(profile).unwrap();
        prop_assert_eq!(Reply::decode(&bytes, &etf::Decoder::default()).unwrap(), reply);
    }
}

#[test]
fn strings_past_65535_elements_use_list_ext() {
    let long = Term::string(&"a".repeat(65536));
    let bytes = etf::encode(&long, Profile::Otp25).unwrap();
    // PROTOCOL.md §5.2: 6C 00 01 00 00, then 65536 × 61 61, then 6A.
    assert_eq!(&bytes[1..6], [0x6C, 0x00, 0x01, 0x00, 0x00]);
    assert_eq!(bytes.len(), 1 + 5 + 65536 * 2 + 1);
    assert_eq!(&bytes[6..8], [0x61, 0x61]);
    assert_eq!(etf::decode(&bytes).unwrap(), long);
    let longest_string = Term::string(&"a".repeat(65535));
    assert_eq!(first_tag(&longest_string, Profile::Otp25), tag::STRING);
}

fn profile() -> impl Strategy<Value = Profile> {
    prop_oneof![Just(Profile::Otp25), Just(Profile::Otp26)]
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![terms::text(40), "(/[a-z0-9._-]{1,12}){1,6}"]
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        name().prop_map(Request::Get),
        name().prop_map(Request::ListDir),
        name().prop_map(Request::ReadFileInfo),
        name().prop_map(Request::ReadLinkInfo),
        Just(Request::GetCwd),
        name().prop_map(Request::GetCwdDrive),
        terms::leaf()
            .prop_filter("not a name", |t| t.as_string().is_none())
            .prop_map(|argument| Request::BadArgument {
                command: erlboot::proto::Command::Get,
                argument
            }),
    ]
}

fn date_time() -> impl Strategy<Value = DateTime> {
    (1970..2100i32, 1..=12u8, 1..=31u8, 0..24u8, 0..60u8, 0..60u8).prop_map(
        |(year, month, day, hour, minute, second)| DateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
        },
    )
}

fn file_info() -> impl Strategy<Value = FileInfo> {
    let kind = prop_oneof![
        Just(FileType::Device),
        Just(FileType::Directory),
        Just(FileType::Other),
        Just(FileType::Regular),
        Just(FileType::Symlink)
    ];
    let access = prop_oneof![
        Just(Access::Read),
        Just(Access::Write),
        Just(Access::ReadWrite),
        Just(Access::None)
    ];
    (
        (
            any::<u64>(),
            kind,
            access,
            date_time(),
            date_time(),
            date_time(),
        ),
        (
            any::<u32>(),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            any::<u32>(),
            any::<u32>(),
        ),
    )
        .prop_map(
            |(
                (size, file_type, access, atime, mtime, ctime),
                (mode, links, major_device, minor_device, inode, uid, gid),
            )| FileInfo {
                size,
                file_type,
                access,
                atime,
                mtime,
                ctime,
                mode,
                links,
                major_device,
                minor_device,
                inode,
                uid,
                gid,
            },
        )
}

fn reason() -> impl Strategy<Value = Reason> {
    prop_oneof![
        prop::sample::select(vec![
            "enoent", "eisdir", "enotdir", "eacces", "einval", "badarg"
        ])
        .prop_map(Reason::atom),
        terms::term().prop_map(Reason),
    ]
}

fn reply() -> impl Strategy<Value = Reply> {
    prop_oneof![
        prop::result::maybe_ok(vec(any::<u8>(), 0..256).prop_map(Into::into), reason())
            .prop_map(Reply::Get),
        prop::result::maybe_ok(vec(name(), 0..8), reason()).prop_map(Reply::ListDir),
        prop::result::maybe_ok(file_info(), reason()).prop_map(Reply::ReadFileInfo),
        prop::result::maybe_ok(file_info(), reason()).prop_map(Reply::ReadLinkInfo),
        prop::result::maybe_ok(name(), reason()).prop_map(Reply::GetCwd),
        prop::sample::select(vec!["unknown_command", "bad_command"])
            .prop_map(|r| Reply::Error(Reason::atom(r))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Decoding from shared memory gives the same term, its binaries pointing into the input.
    #[test]
    fn shared_decoding_reads_binaries_in_place(term in terms::term(), trailing in vec(any::<u8>(), 0..4)) {
        let mut bytes = etf::encode(&term, Profile::Otp26).unwrap();
        bytes.extend_from_slice(&trailing);
        let input = bytes::Bytes::from(bytes);
        let decoder = etf::Decoder::default();
        let shared = decoder.decode_prefix_shared(&input).unwrap();
        prop_assert_eq!(&shared, &decoder.decode_prefix(&input).unwrap());
        let within = input.as_ptr_range();
        let mut binaries = vec![&shared.0];
        while let Some(term) = binaries.pop() {
            match term {
                Term::Binary(b) if !b.is_empty() => {
                    prop_assert!(within.contains(&b.as_ptr()), "a binary was copied");
                }
                Term::Tuple(elems) | Term::List(elems) => binaries.extend(elems),
                Term::ImproperList(elems, tail) => {
                    binaries.extend(elems);
                    binaries.push(tail);
                }
                Term::Map(pairs) => binaries.extend(pairs.iter().flat_map(|(k, v)| [k, v])),
                _ => {}
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// A lazy term takes the same bytes as the decoder, fails where it fails, holds the same
    /// term and splits into the same elements: over encoded terms, cut short, with a byte
    /// changed, and under limits small enough to be crossed.
    #[test]
    fn lazy_terms_read_as_the_decoder_reads(
        term in terms::term(),
        profile in profile(),
        cut in any::<prop::sample::Index>(),
        changed in any::<(prop::sample::Index, u8)>(),
        limits in (1usize..8, 1usize..64, 1usize..4096),
    ) {
        let bytes = etf::encode(&term, profile).unwrap();
        let mut mutated = bytes.clone();
        let at = changed.0.index(mutated.len());
        mutated[at] = changed.1;
        let limits = etf::Limits {
            max_depth: limits.0,
            max_elements: limits.1,
            max_total_bytes: limits.2,
        };
        for input in [&bytes[..], &bytes[..cut.index(bytes.len())], &mutated[..]] {
            erlboot::fuzz_checks::etf_decode(input);
            let shared = bytes::Bytes::copy_from_slice(input);
            let decoder = etf::Decoder::new(limits);
            let lazy = etf::LazyTerm::decode_prefix(&shared, &decoder)
                .map(|(lazy, used)| (lazy.term(), used));
            prop_assert_eq!(lazy, decoder.decode_prefix(input));
        }
    }
}
