//! Decoding limits: how deep, how many and how large a decoded term may be.

/// Bounds that a decoder enforces before it allocates anything for a term.
///
/// Every length field is checked against the bytes actually present and against these limits
/// before memory is reserved for it, so the memory a decode can take is bounded by
/// `max_total_bytes` (plus the input itself), whatever the input claims.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Deepest nesting of tuples, lists and maps (the top-level term is depth 0). This also
    /// bounds the decoder's recursion, so keep it in the hundreds at most.
    pub max_depth: usize,
    /// Most elements in one tuple or list, or pairs in one map.
    pub max_elements: usize,
    /// Most bytes the decoded term may occupy in memory: every term node, every byte of binary
    /// and bignum payload, and every byte of atom text counts.
    pub max_total_bytes: usize,
}

impl Limits {
    /// Generous limits for replies from a trusted peer, which carry whole files.
    pub const fn reply() -> Limits {
        Limits {
            max_depth: 128,
            max_elements: 1 << 22,
            max_total_bytes: 512 << 20,
        }
    }

    /// Tight limits for requests from untrusted clients: a request is a command and a filename.
    pub const fn request() -> Limits {
        Limits {
            max_depth: 32,
            max_elements: 1 << 16,
            max_total_bytes: 4 << 20,
        }
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::reply()
    }
}
