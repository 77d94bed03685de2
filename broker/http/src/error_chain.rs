//! An error with its causes on one line, for logs: `tracing`'s `%err`
//! prints only the outermost message, and our errors keep the cause (the
//! OS error, the bad field) in `source()`.
//!
//! It lives here, the lowest crate the broker and the operator share;
//! runnel-client, which depends on neither, keeps its own copy.

use std::error::Error;

/// An error and its causes, `: `-separated.
pub fn error_chain(err: &dyn Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("cannot write /data/x.log")
        }
    }

    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn every_cause_follows_the_error() {
        let err = Outer(std::io::Error::other("No space left on device"));
        assert_eq!(
            error_chain(&err),
            "cannot write /data/x.log: No space left on device"
        );
        assert_eq!(error_chain(&err.0), "No space left on device");
    }
}
