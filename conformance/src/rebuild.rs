//! The file tree a capture carries: every answer its server gave, rebuilt as a
//! [`FileSource`], so a capture replays on any machine.
//!
//! Contents come from `get` replies, listings from `list_dir`, file infos (times, sizes,
//! inodes, modes as captured) from `read_file_info` and `read_link_info`, the working directory
//! from `get_cwd`, and errors as captured. A question the capture never asked is answered
//! `enoent`. Where a capture asked the same question twice and got two answers (a file that
//! changed, a server restarted elsewhere), the first answer stands and the other is counted in
//! [`CapturedFiles::conflicts`]; an error reason no file source can give (not one of
//! [`FileError`]'s atoms) is counted in [`CapturedFiles::foreign`] and answered `eio`.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::time::Duration;

use bytes::Bytes;
use erlboot::proto::{FileInfo, Reason, Reply, Request};
use erlboot::server::{
    FileError, FileQuestion, FileSource, Follow, Found, Question, Reuse, Version,
};

use crate::pairing;
use crate::transcript::Transcript;

/// What a captured server answered to one file question: what it found, or the reason it gave.
pub type CapturedAnswer = Result<Found, Reason>;

/// The file question a request asked and the answer its reply gave, when the request asks a
/// file source something (`get`, `list_dir`, `read_file_info`, `read_link_info`, `get_cwd`)
/// and the reply answers that command.
pub fn captured_answer(request: &Request, reply: &Reply) -> Option<(Question, CapturedAnswer)> {
    let answer = match (request, reply) {
        (Request::Get(name), Reply::Get(result)) => (
            Question::Get(name.clone()),
            result.clone().map(Found::Contents),
        ),
        (Request::ListDir(name), Reply::ListDir(result)) => (
            Question::ListDir(name.clone()),
            result.clone().map(Found::Names),
        ),
        (Request::ReadFileInfo(name), Reply::ReadFileInfo(result)) => (
            Question::FileInfo(name.clone(), Follow::Links),
            result.clone().map(Found::Info),
        ),
        (Request::ReadLinkInfo(name), Reply::ReadLinkInfo(result)) => (
            Question::FileInfo(name.clone(), Follow::NoLinks),
            result.clone().map(Found::Info),
        ),
        (Request::GetCwd, Reply::GetCwd(result)) => (Question::Cwd, result.clone().map(Found::Cwd)),
        _ => return None,
    };
    Some(answer)
}

/// A captured answer as a source gives it: the reason read back to a [`FileError`], or `None`
/// when no source can give that reason.
pub fn as_source_answer(answer: &CapturedAnswer) -> Option<Result<Found, FileError>> {
    match answer {
        Ok(found) => Some(Ok(found.clone())),
        Err(reason) => reason.as_atom().and_then(FileError::from_atom).map(Err),
    }
}

/// The answers a capture's server gave, as a file source.
#[derive(Clone, Debug, Default)]
pub struct CapturedFiles {
    /// Hashed rather than ordered: a simulated server looks up every request here, and a
    /// path is told from its neighbours only near its end. The hasher has fixed keys; the
    /// map is never iterated in its own order.
    answers: HashMap<Question, Result<Found, FileError>, BuildHasherDefault<DefaultHasher>>,
    conflicts: usize,
    foreign: usize,
}

impl CapturedFiles {
    /// Every answer in every session of a transcript.
    pub fn of(transcript: &Transcript) -> CapturedFiles {
        let mut files = CapturedFiles::default();
        for session in &transcript.sessions {
            for pair in pairing::pairs(session) {
                let request = pair.request.as_ref().and_then(|r| r.request.as_ref());
                let reply = pair.reply.as_ref().and_then(|r| r.reply.as_ref());
                if let (Some(request), Some(reply)) = (request, reply) {
                    if let Some((question, answer)) = captured_answer(request, reply) {
                        files.insert(question, &answer);
                    }
                }
            }
        }
        files
    }

    /// Adds one captured answer (the first answer to a question stands).
    pub fn insert(&mut self, question: Question, answer: &CapturedAnswer) {
        let answer = as_source_answer(answer).unwrap_or_else(|| {
            self.foreign += 1;
            Err(FileError::Io)
        });
        match self.answers.get(&question) {
            Some(first) if *first != answer => self.conflicts += 1,
            Some(_) => {}
            None => {
                self.answers.insert(question, answer);
            }
        }
    }

    /// Holds `contents` as the file `name`'s when they are the bytes it holds already, so
    /// that whoever reads both copies (a simulated server, and the check of what its nodes
    /// receive) reads one; returns whether it did (not when `name` was not read whole, or
    /// its bytes differ).
    pub fn share_contents(&mut self, name: &str, contents: Bytes) -> bool {
        match self.answers.get_mut(&Question::Get(name.to_owned())) {
            Some(Ok(Found::Contents(held))) if *held == contents => {
                *held = contents;
                true
            }
            _ => false,
        }
    }

    /// How many questions the capture answered.
    pub fn len(&self) -> usize {
        self.answers.len()
    }

    /// Whether the capture answered no question.
    pub fn is_empty(&self) -> bool {
        self.answers.is_empty()
    }

    /// Answers that contradicted an earlier answer to the same question (dropped).
    pub fn conflicts(&self) -> usize {
        self.conflicts
    }

    /// Answers with a reason no file source can give (held as `eio`).
    pub fn foreign(&self) -> usize {
        self.foreign
    }

    /// Every question and its answer, in question order.
    pub fn answers(&self) -> impl Iterator<Item = (&Question, &Result<Found, FileError>)> {
        let mut answers: Vec<_> = self.answers.iter().collect();
        answers.sort_unstable_by_key(|&(question, _)| question);
        answers.into_iter()
    }

    /// The bytes of every file the capture's `get` replies carried.
    pub fn file_bytes(&self) -> u64 {
        self.answers
            .values()
            .map(|a| match a {
                Ok(Found::Contents(c)) => c.len() as u64,
                _ => 0,
            })
            .sum()
    }

    fn lookup(&self, question: &Question) -> Result<Found, FileError> {
        self.answers
            .get(question)
            .cloned()
            .unwrap_or(Err(FileError::NoEntry))
    }
}

/// A captured answer of the wrong kind for its question cannot be: [`captured_answer`] pairs
/// each question with its own kind of answer.
fn wrong_kind() -> FileError {
    FileError::Io
}

impl FileSource for CapturedFiles {
    fn get(&self, name: &str) -> Result<Bytes, FileError> {
        match self.lookup(&Question::Get(name.to_owned()))? {
            Found::Contents(contents) => Ok(contents),
            _ => Err(wrong_kind()),
        }
    }

    fn list_dir(&self, name: &str) -> Result<Vec<String>, FileError> {
        match self.lookup(&Question::ListDir(name.to_owned()))? {
            Found::Names(names) => Ok(names),
            _ => Err(wrong_kind()),
        }
    }

    fn file_info(&self, name: &str, follow: Follow) -> Result<FileInfo, FileError> {
        match self.lookup(&Question::FileInfo(name.to_owned(), follow))? {
            Found::Info(info) => Ok(info),
            _ => Err(wrong_kind()),
        }
    }

    fn cwd(&self) -> Result<String, FileError> {
        match self.lookup(&Question::Cwd)? {
            Found::Cwd(cwd) => Ok(cwd),
            _ => Err(wrong_kind()),
        }
    }

    /// Looked up by the question itself: no name is copied to ask for it.
    fn find(&self, question: &FileQuestion) -> Result<Found, FileError> {
        self.lookup(&question.question)
    }

    /// A capture never changes: every answer may be remembered for good.
    fn version(&self) -> Option<Version> {
        Some(0)
    }

    fn reuse(&self, _: &Question, _: Option<&FileInfo>) -> Reuse {
        Reuse::For(Duration::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contents_are_shared_only_for_the_same_bytes_of_a_file_read_whole() {
        let mut files = CapturedFiles::default();
        let get = |name: &str| Question::Get(name.into());
        files.insert(get("/a"), &Ok(Found::Contents(Bytes::from_static(b"AB"))));
        files.insert(Question::ListDir("/d".into()), &Ok(Found::Names(vec![])));
        let elsewhere = Bytes::from(b"xAB".to_vec()).slice(1..);
        assert!(!files.share_contents("/a", Bytes::from_static(b"AC")));
        assert!(!files.share_contents("/b", elsewhere.clone()));
        assert!(!files.share_contents("/d", elsewhere.clone()));
        assert!(files.share_contents("/a", elsewhere.clone()));
        match files.lookup(&get("/a")) {
            Ok(Found::Contents(held)) => assert_eq!(held.as_ptr(), elsewhere.as_ptr()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn replies_answer_only_their_own_commands() {
        let get = Request::Get("/a".into());
        let contents = Reply::Get(Ok(Bytes::from_static(b"A")));
        assert_eq!(
            captured_answer(&get, &contents),
            Some((
                Question::Get("/a".into()),
                Ok(Found::Contents(Bytes::from_static(b"A")))
            ))
        );
        let listing = Reply::ListDir(Ok(vec!["x".into()]));
        assert_eq!(captured_answer(&get, &listing), None);
        let link = Request::ReadLinkInfo("/l".into());
        let info = Reply::ReadLinkInfo(Err(Reason::atom("enoent")));
        assert_eq!(
            captured_answer(&link, &info),
            Some((
                Question::FileInfo("/l".into(), Follow::NoLinks),
                Err(Reason::atom("enoent"))
            ))
        );
        let file_info = Reply::ReadFileInfo(Err(Reason::atom("enoent")));
        assert_eq!(captured_answer(&link, &file_info), None);
        let unknown = Reply::Error(Reason::atom("unknown_command"));
        assert_eq!(captured_answer(&Request::GetCwd, &unknown), None);
    }

    #[test]
    fn the_first_answer_stands_and_contradictions_and_foreign_reasons_are_counted() {
        let mut files = CapturedFiles::default();
        assert!(files.is_empty());
        let question = Question::Get("/a".into());
        files.insert(
            question.clone(),
            &Ok(Found::Contents(Bytes::from_static(b"1"))),
        );
        files.insert(
            question.clone(),
            &Ok(Found::Contents(Bytes::from_static(b"1"))),
        );
        assert_eq!(files.conflicts(), 0);
        files.insert(question, &Ok(Found::Contents(Bytes::from_static(b"2"))));
        assert_eq!(files.conflicts(), 1);
        assert_eq!(&files.get("/a").unwrap()[..], b"1");
        files.insert(Question::ListDir("/d".into()), &Err(Reason::atom("eperm")));
        assert_eq!(files.foreign(), 1);
        assert_eq!(files.list_dir("/d"), Err(FileError::Io));
        files.insert(
            Question::ListDir("/e".into()),
            &Err(Reason::atom("enotdir")),
        );
        assert_eq!(files.list_dir("/e"), Err(FileError::NotDirectory));
        assert_eq!(files.get("/never-asked"), Err(FileError::NoEntry));
        assert_eq!(files.cwd(), Err(FileError::NoEntry));
        assert_eq!(files.len(), 3);
        assert_eq!(files.file_bytes(), 1);
    }
}
