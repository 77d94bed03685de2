//! A file region: a byte range of a segment file, what a fetch sends with
//! `sendfile`. It holds the file open, so a segment deleted by retention
//! while a response is in flight still reads its bytes.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct FileRegion {
    pub file: Arc<File>,
    pub position: u64,
    pub length: u64,
}

impl FileRegion {
    /// Copies the region into `out`: the path for TLS and for tests.
    pub fn read_into(&self, out: &mut Vec<u8>) -> io::Result<()> {
        let start = out.len();
        out.resize(start + self.length as usize, 0);
        self.file.read_exact_at(&mut out[start..], self.position)
    }

    pub fn to_vec(&self) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.length as usize);
        self.read_into(&mut out)?;
        Ok(out)
    }
}

impl runnel_protocol::fetch_writer::RegionLen for FileRegion {
    fn len_bytes(&self) -> u64 {
        self.length
    }
}
