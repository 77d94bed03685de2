//! How a log's files are named: `<base offset as 20 zero-padded digits>`
//! then a suffix (`.log`, `.index`, `.timeindex`, `.txnindex`,
//! `.snapshot`, ...), as Kafka names them. Each suffix belongs to the module
//! of its format; this one only joins them, so every format can name its
//! files without depending on another.

use std::path::{Path, PathBuf};

/// `<dir>/<base offset as 20 digits><suffix>`.
pub fn file_path(dir: &Path, base_offset: i64, suffix: &str) -> PathBuf {
    dir.join(format!("{base_offset:020}{suffix}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_twenty_digits_then_the_suffix() {
        assert_eq!(
            file_path(Path::new("/d"), 42, ".log"),
            Path::new("/d/00000000000000000042.log")
        );
    }
}
