//! The server's replies against OTP 25's, byte for byte, on the same file system.
//!
//! `tests/oracle/boot_server_oracle.escript` computes each reply the way `erl_boot_server`
//! does (the same `erl_prim_loader:prim_*` calls, the same `term_to_binary/1`); the session over
//! a [`DiskSource`] must send the same bytes — unjailed for every request, and jailed for every
//! path inside the roots, while paths leading out are absent.

use erlboot_support::capture;
use erlboot_support::otp;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use erlboot::disk::{DiskConfig, DiskSource, Jail, NameEncoding};
use erlboot::etf::{Decoder, Limits};
use erlboot::etf::{Profile, Term};
use erlboot::proto::FileInfo;
use erlboot::proto::{Reply, Request};
use erlboot::server::{FileSource, ReplyCache, Session, SessionConfig};
use erlboot::time::Instant;
use otp::{read_records, write_records, Otp};

/// OTP's reply payload to each request, or `Err` where its connection process would crash.
fn otp_replies(otp: &Otp, cwd: &Path, requests: &[Vec<u8>]) -> Vec<Result<Vec<u8>, String>> {
    let (host, inside) = otp.scratch();
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/boot_server_oracle.escript");
    std::fs::copy(script, host.join("oracle.escript")).unwrap();
    std::fs::write(host.join("in"), write_records(requests)).unwrap();
    let (script, input, output) = (
        inside.join("oracle.escript"),
        inside.join("in"),
        inside.join("out"),
    );
    otp.escript(
        &script,
        &[
            "replies",
            cwd.to_str().unwrap(),
            input.to_str().unwrap(),
            output.to_str().unwrap(),
        ],
    );
    let out = read_records(&std::fs::read(host.join("out")).unwrap());
    std::fs::remove_dir_all(host).unwrap();
    out.into_iter()
        .map(|r| match r.split_first() {
            Some((0, reply)) => Ok(reply.to_vec()),
            _ => Err(String::from_utf8_lossy(&r[1..]).into_owned()),
        })
        .collect()
}

/// The session's reply payload to each request.
///
/// The session remembers replies as a server does, and answers every request twice: the
/// replies remembered must equal the ones first given.
fn our_replies(source: DiskSource, requests: &[Vec<u8>]) -> Vec<Vec<u8>> {
    remembered_replies(source, requests).0
}

/// The same, with how many requests of the second pass still had to ask the source.
fn remembered_replies(source: DiskSource, requests: &[Vec<u8>]) -> (Vec<Vec<u8>>, usize) {
    let replies = Arc::new(ReplyCache::new(64 << 20));
    let mut session =
        Session::new(SessionConfig::default(), Instant::ZERO).with_replies(Arc::clone(&replies));
    let mut asked = 0;
    let mut answer = |payload: &Vec<u8>, asked: &mut usize| {
        let frame = [&(payload.len() as u32).to_be_bytes()[..], payload].concat();
        replies.observe(source.current_version());
        session.handle_data(Instant::ZERO, &frame);
        let transmit = match session.poll_transmit() {
            Some(remembered) => remembered,
            None => {
                *asked += 1;
                session
                    .poll_transmit_from(&source)
                    .expect("one reply per request")
            }
        };
        transmit.to_vec()[4..].to_vec()
    };
    let first: Vec<Vec<u8>> = requests.iter().map(|r| answer(r, &mut 0)).collect();
    let second: Vec<Vec<u8>> = requests.iter().map(|r| answer(r, &mut asked)).collect();
    for (i, (a, b)) in first.iter().zip(&second).enumerate() {
        assert_eq!(a, b, "request {i} answered differently the second time");
    }
    (first, asked)
}

fn source(jail: Jail, cwd: &Path) -> DiskSource {
    DiskSource::new(DiskConfig {
        jail,
        cwd: cwd.to_owned(),
        encoding: NameEncoding::Utf8,
        cache_bytes: 1 << 20,
        watch: true,
    })
}

/// A tree with the cases that matter: files, an empty file, directories, links inside and
/// out, a dangling link, non-ASCII names, a file in the server's working directory, and `.ez`
/// archives (real, virtual directories, not a zip, a directory, a link, relative).
struct Fixture {
    dir: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "erlboot-serve-oracle-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let root = dir.join("root");
        for d in ["root/dir/sub", "cwd", "outside"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        for (file, contents) in [
            ("root/hello.txt", &b"hi\n"[..]),
            ("root/empty", b""),
            ("root/dir/a", b"a"),
            ("root/dir/b", b"bb"),
            ("root/é.txt", b"e acute"),
            ("root/€.txt", b"euro"),
            ("cwd/mod.beam", b"local module"),
            ("outside/secret", b"secret"),
        ] {
            std::fs::write(dir.join(file), contents).unwrap();
        }
        // Archives made by OTP's zip:create/3 (the archive fuzz target's seeds): an
        // application laid out with directory entries, and one whose directories are virtual.
        let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/archive");
        std::fs::copy(seeds.join("seed-003"), root.join("a-1.0.ez")).unwrap();
        std::fs::copy(seeds.join("seed-002"), root.join("virt.ez")).unwrap();
        std::fs::copy(seeds.join("seed-003"), dir.join("cwd/rel.ez")).unwrap();
        std::fs::write(root.join("notzip.ez"), b"not a zip file at all").unwrap();
        std::fs::create_dir(root.join("realdir.ez")).unwrap();
        std::fs::write(root.join("realdir.ez/x"), b"x").unwrap();
        symlink("a-1.0.ez", root.join("link.ez")).unwrap();
        symlink("hello.txt", root.join("link_file")).unwrap();
        symlink("dir", root.join("link_dir")).unwrap();
        symlink("missing", root.join("dangling")).unwrap();
        symlink("../outside/secret", root.join("escape")).unwrap();
        symlink("../outside", root.join("escape_dir")).unwrap();
        settle_access_times(&dir);
        Fixture { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    fn cwd(&self) -> PathBuf {
        self.dir.join("cwd")
    }

    /// Every request, and whether its target lies inside the jail (root and cwd).
    fn requests(&self) -> Vec<(Request, bool)> {
        let root = self.root().to_str().unwrap().to_owned();
        let outside = self.dir.join("outside").to_str().unwrap().to_owned();
        let inside_names = [
            format!("{root}/hello.txt"),
            format!("{root}/empty"),
            format!("{root}/dir"),
            format!("{root}/dir/"),
            format!("{root}/dir/."),
            format!("{root}/dir/sub/.."),
            format!("{root}/dir/a"),
            format!("{root}/link_file"),
            format!("{root}/link_dir"),
            format!("{root}/link_dir/b"),
            format!("{root}/dangling"),
            format!("{root}/missing"),
            format!("{root}/hello.txt/x"),
            format!("{root}/é.txt"),
            format!("{root}/€.txt"),
            root.clone(),
            "./mod.beam".to_owned(),
            "mod.beam".to_owned(),
            "./nothing.beam".to_owned(),
            "../root/hello.txt".to_owned(),
            "".to_owned(),
            format!("{root}/a-1.0.ez"),
            format!("{root}/a-1.0.ez/"),
            format!("{root}/a-1.0.ez/."),
            format!("{root}/a-1.0.ez/a-1.0"),
            format!("{root}/a-1.0.ez/a-1.0/"),
            format!("{root}/a-1.0.ez/a-1.0/ebin"),
            format!("{root}/a-1.0.ez/a-1.0/ebin/a.beam"),
            format!("{root}/a-1.0.ez/a-1.0/ebin/a.app"),
            format!("{root}/a-1.0.ez/a-1.0/priv/sub/deep.txt"),
            format!("{root}/a-1.0.ez/a-1.0/priv/empty"),
            format!("{root}/a-1.0.ez/missing"),
            format!("{root}/virt.ez/a-1.0/priv"),
            format!("{root}/virt.ez/b-2.0"),
            format!("{root}/virt.ez/c.txt"),
            format!("{root}/notzip.ez"),
            format!("{root}/notzip.ez/x"),
            format!("{root}/realdir.ez/x"),
            format!("{root}/missing.ez/x"),
            format!("{root}/link.ez/a-1.0/ebin/a.beam"),
            "rel.ez/a-1.0/ebin".to_owned(),
            "./rel.ez/a-1.0/ebin/a.app".to_owned(),
        ];
        let outside_names = [
            format!("{outside}/secret"),
            format!("{root}/../outside/secret"),
            format!("{root}/escape_dir/secret"),
            "../outside/secret".to_owned(),
            "/etc/hostname".to_owned(),
        ];
        let mut requests = Vec::new();
        for (names, inside) in [(&inside_names[..], true), (&outside_names[..], false)] {
            for name in names {
                for request in [
                    Request::Get(name.clone()),
                    Request::ListDir(name.clone()),
                    Request::ReadFileInfo(name.clone()),
                    Request::ReadLinkInfo(name.clone()),
                ] {
                    requests.push((request, inside));
                }
            }
        }
        // The link itself is inside; only following it leads out.
        requests.push((Request::ReadLinkInfo(format!("{root}/escape")), true));
        requests.push((Request::Get(format!("{root}/escape")), false));
        for request in [
            Request::GetCwd,
            Request::GetCwdDrive("c:".into()),
            Request::GetCwdDrive("/".into()),
            Request::GetCwdDrive("".into()),
            Request::Unknown(Term::atom("foo")),
            Request::Unknown(Term::tuple([Term::atom("get")])),
        ] {
            requests.push((request, true));
        }
        requests
    }
}

/// Reads every file, directory and link once: with `relatime` only the first read after a
/// change moves an access time, so afterwards both servers describe the same atimes however
/// their reads are ordered.
fn settle_access_times(path: &Path) {
    let meta = std::fs::symlink_metadata(path).unwrap();
    if meta.is_symlink() {
        std::fs::read_link(path).unwrap();
    } else if meta.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            settle_access_times(&entry.unwrap().path());
        }
    } else {
        std::fs::read(path).unwrap();
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn encode(requests: &[(Request, bool)]) -> Vec<Vec<u8>> {
    requests
        .iter()
        .map(|(r, _)| r.encode(Profile::Otp25).unwrap())
        .collect()
}

#[test]
fn unjailed_replies_equal_otp_25_byte_for_byte() {
    let otp = Otp::system();
    let fixture = Fixture::new();
    let requests = fixture.requests();
    let payloads = encode(&requests);
    let theirs = otp_replies(&otp, &fixture.cwd(), &payloads);
    let ours = our_replies(source(Jail::Open, &fixture.cwd()), &payloads);
    let mut compared = 0;
    for (((request, _), theirs), ours) in requests.iter().zip(&theirs).zip(&ours) {
        let Ok(theirs) = theirs else {
            panic!("OTP crashed on {request:?}: {theirs:?}");
        };
        assert_eq!(
            ours,
            theirs,
            "{request:?}:\n ours {}\n OTP  {}",
            Reply::decode(ours, &Default::default()).unwrap().to_term(),
            Reply::decode(theirs, &Default::default())
                .unwrap()
                .to_term()
        );
        compared += 1;
    }
    assert_eq!(compared, requests.len());
}

#[test]
fn jailed_replies_equal_otp_inside_and_are_absent_outside() {
    let otp = Otp::system();
    let fixture = Fixture::new();
    let requests = fixture.requests();
    let payloads = encode(&requests);
    let theirs = otp_replies(&otp, &fixture.cwd(), &payloads);
    let jail = Jail::new([fixture.root(), fixture.cwd()]).unwrap();
    let ours = our_replies(source(jail, &fixture.cwd()), &payloads);
    for (((request, inside), theirs), ours) in requests.iter().zip(&theirs).zip(&ours) {
        let ours = Reply::decode(ours, &Default::default()).unwrap();
        if *inside {
            let theirs = Reply::decode(theirs.as_ref().unwrap(), &Default::default()).unwrap();
            assert_eq!(ours, theirs, "{request:?}");
        } else {
            let command = request.command().unwrap();
            assert_eq!(
                ours,
                Reply::error(command, erlboot::proto::Reason::atom("enoent")),
                "{request:?} leads outside the jail"
            );
        }
    }
}

#[test]
fn a_captured_boot_is_answered_as_otp_answers_it() {
    let otp = Otp::system();
    let fixture = Fixture::new();
    let pcap = erlboot_support::repository().join("captures/otp25-boot.pcap");
    let boot = capture::read(&pcap);
    let payloads: Vec<Vec<u8>> = boot
        .streams
        .iter()
        .flat_map(|s| s.to_server_frames.iter().map(|f| f.payload.clone()))
        .collect();
    assert!(payloads.len() > 300, "a whole boot");
    let erlang = Path::new("/usr/lib/erlang");
    // The boot asks for the infos of directories and files that nothing may have read since
    // OTP was installed, whose access times the first read then moves (whichever server's,
    // or another test's, comes first).
    settle_access_times(erlang);
    settle_access_times(&fixture.cwd());
    let theirs = otp_replies(&otp, &fixture.cwd(), &payloads);
    let jail = Jail::new([erlang.to_owned(), fixture.cwd()]).unwrap();
    let (ours, asked) = remembered_replies(source(jail, &fixture.cwd()), &payloads);
    // A second boot of the same release is answered from memory: not one file question.
    assert_eq!(
        asked, 0,
        "requests of the second boot that asked the source"
    );
    let mut files = 0;
    for ((payload, theirs), ours) in payloads.iter().zip(&theirs).zip(&ours) {
        let request = Request::decode(payload, &Default::default()).unwrap();
        assert_eq!(Ok(ours), theirs.as_ref(), "{request:?}");
        files += usize::from(matches!(
            Reply::decode(ours, &Default::default()).unwrap(),
            Reply::Get(Ok(_))
        ));
    }
    assert!(files > 50, "the boot's modules were served ({files})");
}

#[test]
fn a_file_changed_on_disk_is_never_served_stale() {
    let fixture = Fixture::new();
    let source = source(Jail::new([fixture.root()]).unwrap(), &fixture.cwd());
    let name = format!("{}/dir/a", fixture.root().display());
    assert_eq!(&source.get(&name).unwrap()[..], b"a");
    assert_eq!(source.cache_usage().1, 1, "cached");
    for contents in [&b"b"[..], b"c", b"longer contents"] {
        std::fs::write(fixture.root().join("dir/a"), contents).unwrap();
        assert_eq!(&source.get(&name).unwrap()[..], contents);
    }
    std::fs::remove_file(fixture.root().join("dir/a")).unwrap();
    assert_eq!(source.get(&name), Err(erlboot::server::FileError::NoEntry));
    std::fs::write(fixture.root().join("dir/a.new"), b"renamed").unwrap();
    std::fs::rename(
        fixture.root().join("dir/a.new"),
        fixture.root().join("dir/a"),
    )
    .unwrap();
    assert_eq!(&source.get(&name).unwrap()[..], b"renamed");
}

/// A session of a server that remembers replies, over a jailed, watched tree.
struct Remembering {
    session: Session,
    source: DiskSource,
    replies: Arc<ReplyCache>,
    root: PathBuf,
}

impl Remembering {
    fn new(fixture: &Fixture) -> Remembering {
        let source = source(Jail::new([fixture.root()]).unwrap(), &fixture.cwd());
        assert!(source.watch_error().is_none(), "{:?}", source.watch_error());
        let replies = Arc::new(ReplyCache::new(1 << 20));
        let session = Session::new(SessionConfig::default(), Instant::ZERO)
            .with_replies(Arc::clone(&replies));
        Remembering {
            session,
            source,
            replies,
            root: std::fs::canonicalize(fixture.root()).unwrap(),
        }
    }

    fn ask(&mut self, request: Request) -> Reply {
        let payload = request.encode(Profile::Otp25).unwrap();
        let frame = [&(payload.len() as u32).to_be_bytes()[..], &payload].concat();
        self.session.handle_data(Instant::ZERO, &frame);
        let reply = self
            .session
            .poll_transmit_from(&self.source)
            .unwrap()
            .to_vec();
        Reply::decode(&reply[4..], &Decoder::new(Limits::reply())).unwrap()
    }

    fn name(&self, rel: &str) -> String {
        format!("{}/{rel}", self.root.display())
    }

    fn get(&mut self, rel: &str) -> Result<Vec<u8>, String> {
        match self.ask(Request::Get(self.name(rel))) {
            Reply::Get(Ok(contents)) => Ok(contents.to_vec()),
            Reply::Get(Err(reason)) => Err(reason.as_atom().unwrap().to_owned()),
            other => panic!("{other:?}"),
        }
    }

    fn list(&mut self, rel: &str) -> Vec<String> {
        match self.ask(Request::ListDir(self.name(rel))) {
            Reply::ListDir(Ok(mut names)) => {
                names.sort();
                names
            }
            other => panic!("{other:?}"),
        }
    }

    fn info(&mut self, rel: &str) -> FileInfo {
        match self.ask(Request::ReadFileInfo(self.name(rel))) {
            Reply::ReadFileInfo(Ok(info)) => info,
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn remembered_replies_follow_every_change_on_disk() {
    let fixture = Fixture::new();
    settle_access_times(&fixture.root());
    let mut s = Remembering::new(&fixture);
    let root = s.root.clone();
    let write = |rel: &str, contents: &[u8]| std::fs::write(root.join(rel), contents).unwrap();

    assert_eq!(s.get("dir/a").unwrap(), b"a");
    assert_eq!(s.get("dir/a").unwrap(), b"a");
    assert!(s.replies.usage().1 > 0, "the reply was remembered");
    for contents in [&b"b"[..], b"c", b"longer contents"] {
        write("dir/a", contents);
        assert_eq!(s.get("dir/a").unwrap(), contents);
        assert_eq!(s.get("dir/a").unwrap(), contents);
    }

    // Names appearing and leaving.
    assert_eq!(s.get("dir/later").unwrap_err(), "enoent");
    assert_eq!(s.list("dir"), ["a", "b", "sub"]);
    write("dir/later", b"now");
    assert_eq!(s.get("dir/later").unwrap(), b"now");
    assert_eq!(s.list("dir"), ["a", "b", "later", "sub"]);
    std::fs::remove_file(root.join("dir/later")).unwrap();
    assert_eq!(s.get("dir/later").unwrap_err(), "enoent");

    // A new directory, and a file made in it at once: watched from the start.
    assert_eq!(s.get("new/deep/f").unwrap_err(), "enoent");
    std::fs::create_dir_all(root.join("new/deep")).unwrap();
    write("new/deep/f", b"1");
    assert_eq!(s.get("new/deep/f").unwrap(), b"1");
    write("new/deep/f", b"2");
    assert_eq!(s.get("new/deep/f").unwrap(), b"2");
    std::fs::rename(root.join("new"), root.join("dir/moved")).unwrap();
    assert_eq!(s.get("new/deep/f").unwrap_err(), "enoent");
    write("dir/moved/deep/f", b"3");
    assert_eq!(s.get("dir/moved/deep/f").unwrap(), b"3");

    // Metadata.
    use std::os::unix::fs::PermissionsExt;
    let mode = s.info("dir/b").mode;
    std::fs::set_permissions(root.join("dir/b"), std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(s.info("dir/b").mode & 0o777, 0o600);
    assert_ne!(s.info("dir/b").mode, mode);

    // Renamed into place.
    write("dir/a.new", b"renamed");
    std::fs::rename(root.join("dir/a.new"), root.join("dir/a")).unwrap();
    assert_eq!(s.get("dir/a").unwrap(), b"renamed");

    // Through a link, and through a second link outside the roots: never remembered, and
    // still right.
    assert_eq!(s.get("link_dir/a").unwrap(), b"renamed");
    write("dir/a", b"via link");
    assert_eq!(s.get("link_dir/a").unwrap(), b"via link");
    let outside = fixture.dir.join("outside/hard");
    std::fs::hard_link(root.join("dir/b"), &outside).unwrap();
    assert_eq!(s.get("dir/b").unwrap(), b"bb");
    std::fs::write(&outside, b"changed outside").unwrap();
    assert_eq!(s.get("dir/b").unwrap(), b"changed outside");
}
