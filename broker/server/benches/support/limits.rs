//! The bench process's limit on open files, raised before the broker is
//! started so that the broker inherits it too.

use anyhow::{Context, Result};
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Raises the soft limit on open files (RLIMIT_NOFILE) to at least `wanted`,
/// and the hard limit too if it is below (which needs privileges); returns
/// the soft limit now in force.
pub fn raise_open_files(wanted: u64) -> Result<u64> {
    let limit = getrlimit(Resource::Nofile);
    let current = limit.current.unwrap_or(u64::MAX);
    if current >= wanted {
        return Ok(current);
    }
    let maximum = limit.maximum.unwrap_or(u64::MAX).max(wanted);
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(wanted),
            maximum: Some(maximum),
        },
    )
    .with_context(|| {
        format!(
            "cannot raise the open files limit from {current} to {wanted} (hard limit {:?}): raise `ulimit -n`",
            limit.maximum
        )
    })?;
    Ok(wanted)
}
