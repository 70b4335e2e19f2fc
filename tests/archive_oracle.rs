//! Differential tests of `.ez` archive reading against a real OTP boot server's functions
//! (`erl_prim_loader:prim_get_file/2`, `prim_list_dir/2`, `prim_read_file_info/3`, and
//! `name_split/2`), on archives made by OTP's `zip:create/3` and on odd ones written here.
//!
//! Every request is asked twice in one OTP process: the first answer is OTP opening the archive
//! (`Pass::Opening`), the second comes from its archive cache (`Pass::Cached`).

use erlboot_support::otp;
use erlboot_support::zip;

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use erlboot::archive::{self, Archive, DosSeconds, Pass};
use erlboot::disk::{DiskConfig, DiskSource, Jail, NameEncoding};
use erlboot::etf::{self, Decoder, Limits, Profile, Term};
use erlboot::proto::{FileInfo, Request};
use erlboot::server::{FileError, ReplyCache, Session, SessionConfig};
use otp::Otp;

const OPS: [&str; 4] = ["get", "list_dir", "read_file_info", "read_link_info"];

/// Archives no zip tool makes, to pin down OTP's reading of odd input.
fn odd_archives(dir: &Path) {
    let w = |name: &str, data: Vec<u8>| std::fs::write(dir.join(name), data).unwrap();
    w(
        "dups.ez",
        zip::build(&[
            zip::stored(b"d/x", b"one"),
            zip::stored(b"d/x", b"two"),
            zip::stored(b"d/", b""),
            zip::deflated(b"d/y", b"why why why why"),
            zip::stored(b"d/", b""),
        ]),
    );
    let mut odd_time = zip::stored(b"t", b"time");
    odd_time.date = (127 << 9) | 31; // 2107, month 0, day 31
    odd_time.time = (31 << 11) | (63 << 5) | 31;
    w(
        "names.ez",
        zip::build(&[
            zip::stored(b"/abs", b"abs"),
            zip::stored(b"a//b", b"ab"),
            zip::stored(b"", b"empty name"),
            zip::stored(b"\xe9t\xe9.txt", b"latin1"),
            zip::stored(b"top/", b""),
            zip::stored(b"top//", b""),
            zip::stored(b"x/y/z/", b""),
            zip::stored(b"x/./w", b"dot"),
            zip::stored(b"/", b""),
            odd_time,
        ]),
    );
    let mut bz = zip::stored(b"bz", b"not bzip2");
    bz.method = 12;
    let mut descriptor = zip::stored(b"desc", b"0123456789abcdefDATA");
    descriptor.flags = 8;
    let mut truncated = zip::deflated(b"trunc", &b"abcdefghij".repeat(300));
    truncated.payload.truncate(truncated.payload.len() / 2);
    let mut cut = zip::deflated(b"cut", b"hello world hello, a fixed Huffman block");
    cut.payload.truncate(9);
    let mut corrupt = zip::deflated(b"corrupt", b"x");
    corrupt.payload = vec![0xff; 16];
    let mut lying = zip::deflated(b"lying", &b"z".repeat(5000));
    lying.uncompressed = 7;
    w(
        "methods.ez",
        zip::build(&[
            bz,
            descriptor,
            truncated,
            cut,
            corrupt,
            lying,
            zip::stored(b"ok", b"fine"),
        ]),
    );
    let good = zip::build(&[zip::stored(b"a/b", b"b"), zip::stored(b"c", b"c")]);
    let end = zip::end_record(&good);
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut z = good.clone();
        f(&mut z);
        z
    };
    w(
        "comment.ez",
        zip::build_ordered(
            &[zip::stored(b"a/b", b"b")],
            &[0],
            b"PK\x05\x06 in a comment",
        ),
    );
    w("trailing.ez", with(&|z| z.extend_from_slice(b"xyz")));
    w("badcomment.ez", with(&|z| z[end + 20] = 9));
    w("count_more.ez", with(&|z| z[end + 10] = 3));
    w("count_less.ez", with(&|z| z[end + 10] = 1));
    w("cd_beyond.ez", with(&|z| z[end + 19] = 0x7f));
    w(
        "swapped.ez",
        zip::build_ordered(
            &[
                zip::stored(b"first", b"1111"),
                zip::stored(b"second", b"22"),
            ],
            &[1, 0],
            b"",
        ),
    );
    let mut bad_offset = good.clone();
    let cd = u32::from_le_bytes(bad_offset[end + 16..end + 20].try_into().unwrap()) as usize;
    bad_offset[cd + 42] = 1; // first entry's local header offset
    w("bad_offset.ez", bad_offset);
    // read_link_info of an archive follows the link, like read_file_info.
    std::os::unix::fs::symlink("comment.ez", dir.join("link.ez")).unwrap();
    std::os::unix::fs::symlink("nowhere.ez", dir.join("dangling.ez")).unwrap();
}

/// The names worth asking about in an archive: fixed odd ones, and each entry name with and
/// without its trailing slash, its parents, and a missing sibling.
fn inner_paths(entry_names: &[String]) -> Vec<String> {
    let mut out: Vec<String> = [
        "",
        "/",
        ".",
        "..",
        "./",
        "nope",
        "nope/",
        "a-1.0",
        "a-1.0/",
        "a-1.0/.",
        "a-1.0/..",
        "a-1.0//ebin",
        "./a-1.0",
        "a-1.0/ebin/a.beam/",
        "d/x",
        "x/y",
        "inner.ez/x",
    ]
    .map(String::from)
    .to_vec();
    for name in entry_names {
        let mut n = name.as_str();
        loop {
            out.push(n.to_owned());
            out.push(format!("{n}/"));
            out.push(format!("{n}-missing"));
            let trimmed = n.strip_suffix('/').unwrap_or(n);
            out.push(trimmed.to_owned());
            match trimmed.rfind('/') {
                Some(i) => n = &trimmed[..i],
                None => break,
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Ours, as the term OTP would reply with; an OTP crash is `{crash}`, which ours gives as
/// `eio`.
fn result_term<T>(r: Result<T, FileError>, ok: impl FnOnce(T) -> Term) -> Term {
    match r {
        Ok(v) => Term::tuple([Term::atom("ok"), ok(v)]),
        Err(FileError::Io) => Term::tuple([Term::atom("crash")]),
        Err(e) => Term::tuple([Term::atom("error"), Term::atom(e.atom())]),
    }
}

fn normalize(t: &Term) -> Term {
    if t.is_tagged("crash", 2) {
        Term::tuple([Term::atom("crash")])
    } else {
        t.clone()
    }
}

/// What erlboot answers for `op` on `archive_path`/`inner`, in `pass`.
fn ours(
    op: &str,
    archive_path: &Path,
    inner: &str,
    (pass, seconds): (Pass, DosSeconds),
    info: &Term,
) -> Term {
    let opened = std::fs::read(archive_path)
        .map_err(FileError::from)
        .and_then(|d| Archive::parse(Bytes::from(d)).map_err(FileError::from))
        .map(|a| a.with_dos_seconds(seconds));
    let archive_info = || -> Result<FileInfo, FileError> {
        let [tag, value] = info.as_tuple().expect("info is a pair") else {
            panic!("info {info}")
        };
        match tag.as_atom() {
            Some("ok") => Ok(FileInfo::from_term(value).expect("a file_info")),
            _ => Err(match value.as_atom() {
                Some("enoent") => FileError::NoEntry,
                other => panic!("archive info error {other:?}"),
            }),
        }
    };
    match op {
        "get" => result_term(opened.and_then(|a| a.get_in(pass, inner)), Term::binary),
        "list_dir" => result_term(
            opened
                .and_then(|a| a.list_dir(inner))
                .map_err(|_| FileError::NotDirectory),
            |names| Term::list(names.iter().map(|n| Term::string(n)).collect::<Vec<_>>()),
        ),
        _ => {
            let r = if inner.is_empty() {
                archive_info().map(|i| Archive::directory_info(&i))
            } else {
                opened.and_then(|a| a.file_info_in(pass, inner, &archive_info()?))
            };
            result_term(r, |fi| fi.to_term())
        }
    }
}

/// What a server session over the disk source answers to `op` on `name` asked twice on one
/// connection by a client of `profile`'s release: the connection's first read of the archive,
/// then a later one. Every connection shares `replies`, as a server's do.
fn through_a_session(
    source: &DiskSource,
    replies: &Arc<ReplyCache>,
    op: &str,
    name: &str,
    profile: Profile,
) -> [Term; 2] {
    let request = match op {
        "get" => Request::Get(name.to_owned()),
        "list_dir" => Request::ListDir(name.to_owned()),
        "read_file_info" => Request::ReadFileInfo(name.to_owned()),
        _ => Request::ReadLinkInfo(name.to_owned()),
    };
    let payload = request.encode(profile).unwrap();
    let frame = [&(payload.len() as u32).to_be_bytes()[..], &payload].concat();
    let mut session = Session::new(SessionConfig::default(), erlboot::time::Instant::ZERO)
        .with_replies(Arc::clone(replies));
    let decoder = Decoder::new(Limits::reply());
    [(); 2].map(|()| {
        session.handle_data(erlboot::time::Instant::ZERO, &frame);
        let reply = session
            .poll_transmit_from(source)
            .expect("a reply")
            .to_vec();
        let reply = decoder.decode(&reply[4..]).unwrap();
        let [_, result] = reply.as_tuple().expect("{Command, Result}") else {
            panic!("reply {reply}")
        };
        // OTP's connection crashes where erlboot answers eio.
        match result.as_tuple() {
            Some([e, r]) if e.as_atom() == Some("error") && r.as_atom() == Some("eio") => {
                Term::tuple([Term::atom("crash")])
            }
            _ => result.clone(),
        }
    })
}

/// Whether a file-info answer is a zip entry's (mode 8#066), not one made from the archive
/// file's own info (the archive, a virtual directory), whose times this side reads later.
fn from_the_zip(answer: &Term) -> bool {
    match answer.as_tuple() {
        Some([ok, info]) if ok.as_atom() == Some("ok") => {
            FileInfo::from_term(info).is_some_and(|i| i.mode == 0o66)
        }
        _ => true,
    }
}

#[test]
fn archives_read_as_otp25_reads_them() {
    check_against(Otp::system(), DosSeconds::AsStored);
}

/// OTP 27's server (`prim_read_file/2`) reads archives the same way, except that an entry's
/// DOS seconds are doubled.
#[test]
fn archives_read_as_otp27_reads_them() {
    check_against(Otp::otp27(), DosSeconds::Doubled);
}

const UTC: [(&str, &str); 1] = [("TZ", "UTC")];

fn check_against(otp: Otp, seconds: DosSeconds) {
    let (host, inside) = otp.scratch();
    let script = inside.join("archive_oracle.escript");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/archive_oracle.escript"),
        host.join("archive_oracle.escript"),
    )
    .unwrap();
    let dir = inside.to_str().unwrap().to_owned();
    otp.escript_env(&script, &["make", &dir], &UTC);
    odd_archives(&host);
    // Where a path OTP sees lies on this side.
    let here = |path: &str| host.join(path.strip_prefix(&dir).unwrap().trim_start_matches('/'));

    let mut archives: Vec<String> = std::fs::read_dir(&host)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".ez"))
        .collect();
    archives.push("missing.ez".into());
    archives.sort();

    // Every query: (op, full path as OTP sees it).
    let mut queries = Vec::new();
    for name in &archives {
        let path = format!("{dir}/{name}");
        let names: Vec<String> = std::fs::read(here(&path))
            .ok()
            .and_then(|d| Archive::parse(Bytes::from(d)).ok())
            .map(|a| a.names().map(String::from).collect())
            .unwrap_or_default();
        for inner in inner_paths(&names) {
            for op in OPS {
                queries.push((op, format!("{path}/{inner}")));
            }
        }
        for op in OPS {
            queries.push((op, path.clone()));
        }
    }
    // Names for split alone: where OTP sees an archive, and where not.
    for name in [
        "a.ez",
        "a.ez/",
        "a.ez/.",
        "a.ez/..",
        ".ez",
        "/.ez",
        "/.ez/x",
        "a.ezb/c",
        "a.EZ/c",
        "x/a.ez/b.ez/c",
        "a.ez.ez/c",
        "a.ez//c",
        "/",
        "",
        "ez",
        ".e",
        "a/.ez",
        "tree/a.ez",
        "€.ez/é",
    ] {
        queries.push(("split", name.to_owned()));
    }

    let records: Vec<Vec<u8>> = queries
        .iter()
        .map(|(op, path)| {
            let archive = match archive::split(path) {
                Some((a, _)) if *op != "split" => Term::string(a),
                _ => Term::atom("false"),
            };
            let op = if *op == "split" { "get" } else { op };
            etf::encode(
                &Term::tuple([Term::atom(op), Term::string(path), archive]),
                Profile::Otp25,
            )
            .unwrap()
        })
        .collect();
    std::fs::write(host.join("in"), otp::write_records(&records)).unwrap();
    let (i, o) = (inside.join("in"), inside.join("out"));
    otp.escript_env(
        &script,
        &["query", i.to_str().unwrap(), o.to_str().unwrap()],
        &UTC,
    );
    let answers = otp::read_records(&std::fs::read(host.join("out")).unwrap());
    assert_eq!(answers.len(), queries.len());

    let cwd = std::env::current_dir().unwrap();
    let decoder = Decoder::new(Limits::reply());
    let mut mismatches = Vec::new();
    let mut checked = 0;
    let mut checked_served = 0;
    // Watched, so that answers are remembered where the source allows: one connection's
    // walk of an archive must never answer another's.
    let disk = DiskSource::new(DiskConfig {
        jail: Jail::new([host.clone()]).unwrap(),
        cwd: host.clone(),
        encoding: NameEncoding::Utf8,
        cache_bytes: 64 << 20,
        watch: true,
    });
    assert!(disk.watch_error().is_none(), "{:?}", disk.watch_error());
    let replies = Arc::new(ReplyCache::new(64 << 20));
    let profile = match seconds {
        DosSeconds::AsStored => Profile::Otp25,
        DosSeconds::Doubled => Profile::Otp26,
    };
    for ((op, path), answer) in queries.iter().zip(&answers) {
        let answer = decoder.decode(answer).unwrap();
        let [split, first, again, info] = answer.as_tuple().unwrap() else {
            panic!("bad answer {answer}")
        };
        // The split, with OTP's absname applied to ours.
        let our_split = match archive::split(path) {
            Some((a, inner)) => {
                let abs = if a.starts_with('/') {
                    a.to_owned()
                } else {
                    format!("{}/{a}", cwd.display())
                };
                Term::tuple([
                    Term::atom("archive"),
                    Term::string(&abs),
                    Term::string(inner),
                ])
            }
            None => Term::tuple([Term::atom("file"), Term::string(path)]),
        };
        if split.as_atom() != Some("unknown") {
            checked += 1;
            if our_split != *split {
                mismatches.push(format!("split {path:?}: OTP {split}, ours {our_split}"));
            }
        }
        if *op == "split" {
            continue;
        }
        let (archive_path, inner) = archive::split(path).expect("queries name archives");
        let archive_here = here(archive_path);
        for (pass, theirs) in [(Pass::Opening, first), (Pass::Cached, again)] {
            let mine = ours(op, &archive_here, inner, (pass, seconds), info);
            checked += 1;
            if mine != normalize(theirs) {
                mismatches.push(format!("{op} {path:?} {pass:?}: OTP {theirs}, ours {mine}"));
            }
        }
        // The same through a session and the disk source, as `erlboot serve` answers a client
        // of this release: the session tells the first read of an archive from later ones,
        // the request's encoding tells the release.
        let name_here = format!("{}/{inner}", archive_here.display());
        let name_here = if inner.is_empty() && !path.ends_with('/') {
            archive_here.display().to_string()
        } else {
            name_here
        };
        let served = through_a_session(&disk, &replies, op, &name_here, profile);
        for ((pass, theirs), mine) in [(Pass::Opening, first), (Pass::Cached, again)]
            .into_iter()
            .zip(served)
        {
            let theirs = normalize(theirs);
            if op.starts_with("read_") && !(from_the_zip(&theirs) && from_the_zip(&mine)) {
                continue;
            }
            checked_served += 1;
            if mine != theirs {
                mismatches.push(format!(
                    "served {op} {path:?} {pass:?}: OTP {theirs}, ours {mine}"
                ));
            }
        }
    }
    std::fs::remove_dir_all(&host).unwrap();
    assert!(
        mismatches.is_empty(),
        "{} of {checked} answers differ from OTP:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    assert!(checked > 2000, "only {checked} answers checked");
    assert!(
        checked_served > 1500,
        "only {checked_served} served answers checked"
    );
    eprintln!("{checked} answers agree with OTP, and {checked_served} served through a session");
}

#[test]
#[ignore = "writes fuzz/corpus/archive; run by hand"]
fn write_archive_seeds() {
    let otp = Otp::system();
    let (host, _) = otp.scratch();
    let script = host.join("archive_oracle.escript");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/archive_oracle.escript"),
        &script,
    )
    .unwrap();
    otp.escript(&script, &["make", host.to_str().unwrap()]);
    odd_archives(&host);
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/archive");
    std::fs::create_dir_all(&corpus).unwrap();
    // Made by OTP's zip:create/3 first, then the odd ones.
    let names = [
        "empty.ez",
        "mem.ez",
        "flat.ez",
        "app_deflated.ez",
        "multi.ez",
        "dups.ez",
        "names.ez",
        "methods.ez",
        "comment.ez",
        "swapped.ez",
    ];
    for (i, name) in names.iter().enumerate() {
        std::fs::copy(host.join(name), corpus.join(format!("seed-{i:03}"))).unwrap();
    }
    std::fs::remove_dir_all(&host).unwrap();
}
