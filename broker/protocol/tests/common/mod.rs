//! Helpers shared by the protocol crate's integration tests.

use bytes::Bytes;
use runnel_protocol::fetch_writer::{Chunk, RegionLen};

/// A region standing in for a segment file region: its bytes are what the
/// server would send from the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRegion(pub Bytes);

impl RegionLen for TestRegion {
    fn len_bytes(&self) -> u64 {
        self.0.len() as u64
    }
}

/// The bytes a connection would send for `chunks`, regions included.
pub fn flatten(chunks: &[Chunk<TestRegion>]) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in chunks {
        match chunk {
            Chunk::Bytes(bytes) | Chunk::Region(TestRegion(bytes)) => out.extend_from_slice(bytes),
        }
    }
    out
}

/// xorshift64: deterministic pseudo-random numbers without a dependency.
#[derive(Debug, Clone)]
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn bytes(&mut self, len: usize) -> Bytes {
        (0..len).map(|_| self.next() as u8).collect()
    }
}
