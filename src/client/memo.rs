//! Replies remembered by the memory they arrived in: a reply payload held in shared memory,
//! read once, is read again as it was read, without its bytes being looked at.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;

use super::response::{read_reply, ReplyError, Response};
use crate::etf::Decoder;

/// Entries a memo holds before it starts afresh (and lets go of the memory they hold).
const CAPACITY: usize = 4096;

/// What [`read_reply`] made of reply payloads, by the memory they were held in.
///
/// Readers of the very same bytes (the simulated nodes of a herd, whose servers hand the
/// replies they remember as the same memory) read each reply once between them, check and
/// interpretation both, rather than once each. An entry holds a share of the bytes it was
/// made on, so that memory is neither freed nor changed while the entry stands: the same
/// address and length are the same bytes. What the memo answers is what `read_reply` answers;
/// only payloads that are not a term are not remembered.
#[derive(Debug)]
pub struct ReplyMemo {
    decoder: Decoder,
    /// Keyed by address and length, which no peer chooses: a fixed hasher, no random seed.
    read: Mutex<ReadMap>,
}

/// What the memo holds, by the address and length of the payload read.
type ReadMap = HashMap<(usize, usize), Read, foldhash::fast::FixedState>;

#[derive(Debug)]
struct Read {
    /// Keeps the memory the key names alive and unchanged.
    _payload: Bytes,
    reply: Result<Response, ReplyError>,
}

impl ReplyMemo {
    /// An empty memo of what `read_reply` makes of payloads with `decoder`.
    pub fn new(decoder: Decoder) -> ReplyMemo {
        ReplyMemo {
            decoder,
            read: Mutex::new(HashMap::default()),
        }
    }

    /// The decoder whose readings the memo holds.
    pub fn decoder(&self) -> Decoder {
        self.decoder
    }

    /// [`read_reply`] with this memo's decoder; from the memo when `payload` is memory it has
    /// read before.
    pub fn read(&self, payload: &Bytes) -> Result<Response, ReplyError> {
        let key = (payload.as_ptr() as usize, payload.len());
        if let Some(read) = self.lock().get(&key) {
            return read.reply.clone();
        }
        let reply = read_reply(payload, &self.decoder);
        if !matches!(reply, Err(ReplyError::Undecodable(_))) {
            let mut read = self.lock();
            if read.len() >= CAPACITY {
                read.clear();
            }
            read.insert(
                key,
                Read {
                    _payload: payload.clone(),
                    reply: reply.clone(),
                },
            );
        }
        reply
    }

    /// Payloads remembered.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, ReadMap> {
        // The map is consistent between statements; a panic elsewhere leaves it usable.
        self.read
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etf::{encode, Limits, Profile, Term};

    fn payload(term: &Term) -> Bytes {
        encode(term, Profile::Otp25).unwrap().into()
    }

    fn listing(n: usize) -> Bytes {
        let names: Vec<Term> = (0..n)
            .map(|i| Term::string(&format!("module_{i}.beam")))
            .collect();
        payload(&Term::tuple([
            Term::atom("list_dir"),
            Term::tuple([Term::atom("ok"), Term::list(names)]),
        ]))
    }

    fn memo() -> ReplyMemo {
        ReplyMemo::new(Decoder::new(Limits::reply()))
    }

    #[test]
    fn the_same_memory_is_answered_from_the_memo_as_read_reply_answers() {
        let memo = memo();
        let input = listing(20);
        let direct = read_reply(&input, &Decoder::new(Limits::reply()));
        assert!(matches!(direct, Ok(Response::Ok(_))));
        assert_eq!(memo.read(&input), direct);
        assert_eq!(memo.len(), 1);
        assert!(!memo.is_empty());
        assert_eq!(memo.read(&input), direct);
        assert_eq!(memo.len(), 1);

        // Equal bytes in other memory are read afresh, and remembered apart.
        let copy = Bytes::copy_from_slice(&input);
        assert_eq!(memo.read(&copy), direct);
        assert_eq!(memo.len(), 2);
        // So is a shorter view of the same memory, which is not a term.
        let cut = memo.read(&input.slice(..input.len() - 1));
        assert!(matches!(cut, Err(ReplyError::Undecodable(_))));
        assert_eq!(memo.len(), 2);
    }

    #[test]
    fn files_and_errors_are_remembered_as_read() {
        let memo = memo();
        let file = payload(&Term::tuple([
            Term::atom("get"),
            Term::tuple([Term::atom("ok"), Term::binary(&b"contents"[..])]),
        ]));
        let enoent = payload(&Term::tuple([
            Term::atom("get"),
            Term::tuple([Term::atom("error"), Term::atom("enoent")]),
        ]));
        let weird = payload(&Term::atom("weird"));
        for _ in 0..2 {
            assert_eq!(
                memo.read(&file),
                Ok(Response::File(Term::binary(&b"contents"[..]).into()))
            );
            assert_eq!(
                memo.read(&enoent),
                Err(ReplyError::Server(Term::atom("enoent")))
            );
            assert_eq!(
                memo.read(&weird),
                Err(ReplyError::Unexpected(Term::atom("weird")))
            );
        }
        assert_eq!(memo.len(), 3);
        // The contents handed out are the payload's own memory.
        let Ok(Response::File(contents)) = memo.read(&file) else {
            panic!("not a file");
        };
        let contents = contents.binary().unwrap();
        assert!(file.as_ptr_range().contains(&contents.as_ptr()));
    }

    #[test]
    fn what_is_not_a_term_is_not_remembered() {
        let memo = memo();
        let mut bad = listing(20).to_vec();
        bad[0] = 130;
        let bad = Bytes::from(bad);
        for _ in 0..2 {
            assert!(matches!(memo.read(&bad), Err(ReplyError::Undecodable(_))));
        }
        assert!(matches!(
            memo.read(&Bytes::new()),
            Err(ReplyError::Undecodable(_))
        ));
        assert!(memo.is_empty());
    }

    #[test]
    fn the_memo_reads_with_its_own_decoders_limits() {
        let input = listing(20);
        let mut limits = Limits::reply();
        limits.max_elements = 5;
        let strict = ReplyMemo::new(Decoder::new(limits));
        assert!(matches!(
            strict.read(&input),
            Err(ReplyError::Undecodable(_))
        ));
        assert!(strict.is_empty());
        assert_eq!(strict.decoder().limits(), limits);
    }

    #[test]
    fn a_full_memo_starts_afresh() {
        let memo = memo();
        let inputs: Vec<Bytes> = (0..CAPACITY + 1)
            .map(|_| Bytes::copy_from_slice(&listing(3)))
            .collect();
        for input in &inputs[..CAPACITY] {
            memo.read(input).unwrap();
        }
        assert_eq!(memo.len(), CAPACITY);
        memo.read(&inputs[CAPACITY]).unwrap();
        assert_eq!(memo.len(), 1);
    }
}
