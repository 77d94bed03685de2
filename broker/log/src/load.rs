//! Opening a partition log from its directory, as Kafka's `LogLoader`:
//! leftovers of deletes and interrupted cleanings are settled first, then
//! the segments are opened, and after an unclean stop every segment from the
//! recovery point on is scanned batch by batch. The first torn or invalid
//! batch cuts the log there and every later segment is deleted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::LogConfig;
use crate::error::{LogError, Result};
use crate::log::{PartitionLog, sync_dir};
use crate::scan::{ScanEnd, scan_batches};
use crate::segment::{
    CLEANED_SUFFIX, DELETED_SUFFIX, INDEX_SUFFIX, LOG_SUFFIX, SWAP_SUFFIX, Segment,
    TIME_INDEX_SUFFIX, file_path,
};

/// What the log manager knows about a log from its checkpoints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadState {
    /// Offsets below this were flushed before the last stop.
    pub recovery_point: i64,
    pub log_start_offset: i64,
    /// The log dir's clean-shutdown marker was present.
    pub clean_shutdown: bool,
}

/// Files of a log directory sorted by what they are.
#[derive(Debug, Default)]
struct DirListing {
    logs: Vec<i64>,
    swaps: Vec<i64>,
    leftovers: Vec<PathBuf>,
    indexes: Vec<(i64, PathBuf)>,
}

impl PartitionLog {
    /// Opens (creating if needed) the log in `dir`.
    pub fn open(dir: &Path, config: LogConfig, state: LoadState, now_ms: i64) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|source| LogError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let listing = list_dir(dir)?;
        for path in &listing.leftovers {
            remove(path)?;
        }
        for base in &listing.swaps {
            complete_swap(dir, *base, &listing.logs)?;
        }
        let mut bases = listing.logs.clone();
        bases.extend(&listing.swaps);
        bases.sort_unstable();
        bases.dedup();
        let bases: Vec<i64> = bases
            .into_iter()
            .filter(|b| file_path(dir, *b, LOG_SUFFIX).exists())
            .collect();
        for (base, path) in &listing.indexes {
            if bases.binary_search(base).is_err() {
                remove(path)?;
            }
        }

        let mut segments = BTreeMap::new();
        for base in bases {
            segments.insert(base, Segment::open(dir, base, &config)?);
        }
        if segments.is_empty() {
            let start = state.log_start_offset.max(0);
            segments.insert(start, Segment::create(dir, start, &config, now_ms)?);
        }

        let recover_from = if state.clean_shutdown {
            None
        } else {
            Some(
                segments
                    .range(..=state.recovery_point)
                    .next_back()
                    .map_or(state.recovery_point, |(b, _)| *b),
            )
        };
        let mut cut_at = None;
        for (base, segment) in segments.iter_mut() {
            let needs_recovery = recover_from.is_some_and(|from| *base >= from);
            if needs_recovery {
                let cut = segment.recover(&config)?;
                if cut > 0 {
                    cut_at = Some(*base);
                    break;
                }
            } else {
                segment.check_indexes(&config)?;
            }
        }
        if let Some(cut_base) = cut_at {
            let later: Vec<i64> = segments.range(cut_base + 1..).map(|(b, _)| *b).collect();
            for base in later {
                tracing::warn!(dir = %dir.display(), base_offset = base, "deleting a segment after the recovery cut");
                for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
                    remove(&file_path(dir, base, suffix))?;
                }
                segments.remove(&base);
            }
        }

        let last_base = *segments.keys().next_back().expect("at least one segment");
        for (base, segment) in segments.iter_mut() {
            if *base == last_base {
                segment.make_active(&config)?;
            } else {
                segment.make_inactive()?;
            }
        }
        let first_base = *segments.keys().next().expect("at least one segment");
        let log_start_offset = state.log_start_offset.max(first_base);
        let mut log = PartitionLog::from_parts(
            dir.to_path_buf(),
            config,
            segments,
            log_start_offset,
            state.recovery_point,
        )?;
        if log.log_start_offset > log.log_end_offset {
            log.log_start_offset = log.log_end_offset;
        }
        log.load_producer_state(now_ms)?;
        log.load_leader_epochs()?;
        if recover_from.is_some() {
            // What recovery kept is now the log: make it durable so the next
            // unclean start does not scan it again.
            log.flush()?;
            sync_dir(dir)?;
        } else {
            log.recovery_point = log.log_end_offset;
        }
        Ok(log)
    }
}

fn list_dir(dir: &Path) -> Result<DirListing> {
    let list_err = |source| LogError::ListDir {
        path: dir.to_path_buf(),
        source,
    };
    let mut listing = DirListing::default();
    for entry in std::fs::read_dir(dir).map_err(list_err)? {
        let path = entry.map_err(list_err)?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.ends_with(DELETED_SUFFIX) || name.ends_with(CLEANED_SUFFIX) {
            listing.leftovers.push(path.clone());
            continue;
        }
        let (stem, rest) = name.split_at(name.find('.').unwrap_or(name.len()));
        let Some(base) = parse_base_offset(stem) else {
            continue;
        };
        match rest {
            LOG_SUFFIX => listing.logs.push(base),
            ".log.swap" => listing.swaps.push(base),
            ".index.swap" | ".timeindex.swap" => listing.leftovers.push(path.clone()),
            INDEX_SUFFIX | TIME_INDEX_SUFFIX => listing.indexes.push((base, path.clone())),
            _ => {}
        }
    }
    listing.logs.sort_unstable();
    listing.swaps.sort_unstable();
    Ok(listing)
}

fn parse_base_offset(stem: &str) -> Option<i64> {
    (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()))
        .then(|| stem.parse().ok())
        .flatten()
}

/// Finishes a cleaning that was interrupted after its output was complete:
/// the segments it replaces go, and `<base>.log.swap` becomes `<base>.log`.
/// Its indexes are rebuilt when the segment is opened.
fn complete_swap(dir: &Path, base: i64, logs: &[i64]) -> Result<()> {
    let swap_path = file_path(dir, base, &format!("{LOG_SUFFIX}{SWAP_SUFFIX}"));
    let file = std::fs::File::open(&swap_path).map_err(|source| LogError::OpenSegment {
        path: swap_path.clone(),
        source,
    })?;
    let size = file
        .metadata()
        .map_err(|source| LogError::OpenSegment {
            path: swap_path.clone(),
            source,
        })?
        .len();
    let mut next_offset = base;
    let end = scan_batches(&file, 0, size, |header, _, _| {
        next_offset = header.next_offset();
        true
    })
    .map_err(|source| LogError::ReadSegment {
        path: swap_path.clone(),
        position: 0,
        source,
    })?;
    if let ScanEnd::Invalid { position, reason } = end {
        // A swap file is fsynced before it is named .swap; a bad one is
        // dropped and the original segments stay.
        tracing::error!(path = %swap_path.display(), position, %reason, "discarding an invalid cleaner swap file");
        return remove(&swap_path);
    }
    for replaced in logs
        .iter()
        .filter(|b| **b >= base && **b < next_offset.max(base + 1))
    {
        for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            remove(&file_path(dir, *replaced, suffix))?;
        }
    }
    for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
        remove(&file_path(dir, base, suffix))?;
    }
    let to = file_path(dir, base, LOG_SUFFIX);
    std::fs::rename(&swap_path, &to).map_err(|source| LogError::Rename {
        from: swap_path,
        to,
        source,
    })?;
    tracing::info!(dir = %dir.display(), base_offset = base, "completed an interrupted cleaner swap");
    sync_dir(dir)
}

fn remove(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(source) if source.kind() != std::io::ErrorKind::NotFound => Err(LogError::Delete {
            path: path.to_path_buf(),
            source,
        }),
        _ => Ok(()),
    }
}
