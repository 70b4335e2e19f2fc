//! Checks remembered by the memory they were made on: a term that a decoder accepted, held in
//! shared memory, is accepted again at the same end without being read again.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;

use super::{DecodeError, Decoder, LazyTerm};

/// Entries a memo holds before it starts afresh (and lets go of the memory they hold).
const CAPACITY: usize = 4096;

/// Inputs shorter than this are checked each time: their check costs no more than a lookup.
const MIN_LEN: usize = 64;

/// The terms [`LazyTerm::decode_prefix`] has accepted, by the memory they were held in.
///
/// Readers of the very same bytes (the simulated nodes of a herd, which their servers hand
/// the replies they remember as the same memory) check each reply once between them, rather
/// than once each. An entry holds a share of the bytes it was made on, so that memory is
/// neither freed nor changed while the entry stands: the same address and length are the
/// same bytes. What the memo answers is what the decoder answers; only rejections are not
/// remembered.
#[derive(Debug)]
pub struct CheckMemo {
    decoder: Decoder,
    /// Keyed by address and length, which no peer chooses: a fixed hasher, no random seed.
    accepted: Mutex<AcceptedMap>,
}

/// What the memo holds, by the address and length of the bytes a term was accepted in.
type AcceptedMap = HashMap<(usize, usize), Accepted, foldhash::fast::FixedState>;

#[derive(Debug)]
struct Accepted {
    /// Keeps the memory the key names alive and unchanged.
    _input: Bytes,
    term: LazyTerm,
    end: usize,
}

impl CheckMemo {
    /// An empty memo of what `decoder` accepts.
    pub fn new(decoder: Decoder) -> CheckMemo {
        CheckMemo {
            decoder,
            accepted: Mutex::new(HashMap::default()),
        }
    }

    /// The decoder whose answers the memo holds.
    pub fn decoder(&self) -> Decoder {
        self.decoder
    }

    /// [`LazyTerm::decode_prefix`] with this memo's decoder; from the memo when `input` is
    /// memory it has accepted before.
    pub fn decode_prefix(&self, input: &Bytes) -> Result<(LazyTerm, usize), DecodeError> {
        if input.len() < MIN_LEN {
            return LazyTerm::decode_prefix(input, &self.decoder);
        }
        let key = (input.as_ptr() as usize, input.len());
        if let Some(accepted) = self.lock().get(&key) {
            return Ok((accepted.term.clone(), accepted.end));
        }
        let (term, end) = LazyTerm::decode_prefix(input, &self.decoder)?;
        let mut accepted = self.lock();
        if accepted.len() >= CAPACITY {
            accepted.clear();
        }
        accepted.insert(
            key,
            Accepted {
                _input: input.clone(),
                term: term.clone(),
                end,
            },
        );
        Ok((term, end))
    }

    /// Terms remembered.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, AcceptedMap> {
        // The map is consistent between statements; a panic elsewhere leaves it usable.
        self.accepted
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etf::{encode, Limits, Profile, Term};

    fn listing(n: usize) -> Bytes {
        let names: Vec<Term> = (0..n)
            .map(|i| Term::string(&format!("module_{i}.beam")))
            .collect();
        let term = Term::tuple([
            Term::atom("list_dir"),
            Term::tuple([Term::atom("ok"), Term::list(names)]),
        ]);
        encode(&term, Profile::Otp25).unwrap().into()
    }

    #[test]
    fn the_same_memory_is_answered_from_the_memo_as_the_decoder_answers() {
        let memo = CheckMemo::new(Decoder::new(Limits::reply()));
        let input = listing(20);
        let first = memo.decode_prefix(&input).unwrap();
        assert_eq!(memo.len(), 1);
        assert!(!memo.is_empty());
        let again = memo.decode_prefix(&input).unwrap();
        assert_eq!(memo.len(), 1);
        let direct = LazyTerm::decode_prefix(&input, &Decoder::new(Limits::reply())).unwrap();
        assert_eq!(again.1, direct.1);
        assert_eq!(again.0.term(), direct.0.term());
        assert_eq!(first.0.term(), direct.0.term());

        // Equal bytes in other memory are checked afresh, and remembered apart.
        let copy = Bytes::copy_from_slice(&input);
        assert_eq!(memo.decode_prefix(&copy).unwrap().1, direct.1);
        assert_eq!(memo.len(), 2);
        // So is a shorter view of the same memory, which ends elsewhere.
        assert!(memo.decode_prefix(&input.slice(..input.len() - 1)).is_err());
        assert_eq!(memo.len(), 2);
    }

    #[test]
    fn rejections_and_short_inputs_are_not_remembered() {
        let memo = CheckMemo::new(Decoder::new(Limits::reply()));
        let mut bad = listing(20).to_vec();
        bad[0] = 130;
        let bad = Bytes::from(bad);
        assert!(memo.decode_prefix(&bad).is_err());
        assert!(memo.decode_prefix(&bad).is_err());
        let short: Bytes = encode(&Term::atom("ok"), Profile::Otp25).unwrap().into();
        assert!(short.len() < MIN_LEN);
        assert_eq!(
            memo.decode_prefix(&short).unwrap().0.term(),
            Term::atom("ok")
        );
        assert!(memo.is_empty());
    }

    #[test]
    fn an_input_of_the_least_length_remembered_is_remembered() {
        let memo = CheckMemo::new(Decoder::new(Limits::reply()));
        let mut bytes = vec![131, crate::etf::tag::BINARY, 0, 0, 0, 58];
        bytes.resize(MIN_LEN, b'x');
        let input = Bytes::from(bytes);
        assert_eq!(memo.decode_prefix(&input).unwrap().1, MIN_LEN);
        assert_eq!(memo.len(), 1);
        assert_eq!(memo.decode_prefix(&input.slice(..MIN_LEN - 1)).ok(), None);
        assert_eq!(memo.len(), 1);
    }

    #[test]
    fn the_memo_answers_with_its_own_decoders_limits() {
        let input = listing(20);
        let mut limits = Limits::reply();
        limits.max_elements = 5;
        let strict = CheckMemo::new(Decoder::new(limits));
        assert!(strict.decode_prefix(&input).is_err());
        assert!(strict.is_empty());
        assert_eq!(strict.decoder().limits(), limits);
    }

    #[test]
    fn a_full_memo_starts_afresh() {
        let memo = CheckMemo::new(Decoder::new(Limits::reply()));
        let inputs: Vec<Bytes> = (0..CAPACITY + 1)
            .map(|_| Bytes::copy_from_slice(&listing(3)))
            .collect();
        for input in &inputs[..CAPACITY] {
            memo.decode_prefix(input).unwrap();
        }
        assert_eq!(memo.len(), CAPACITY);
        memo.decode_prefix(&inputs[CAPACITY]).unwrap();
        assert_eq!(memo.len(), 1);
    }
}
