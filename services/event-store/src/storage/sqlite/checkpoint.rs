//! The checkpoint thread: PASSIVE WAL checkpoints on a connection of its own, so the writer's
//! commits mostly pay only for their own WAL fsync.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;

/// How often the WAL is copied back into the database file.
pub(super) const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(50);

pub(super) fn open_checkpointer(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(conn)
}

/// Runs PASSIVE checkpoints until `stop` is dropped. A PASSIVE checkpoint never blocks the
/// writer or readers; it syncs the WAL before copying and the database file after, so the
/// writer's commits only pay for their own WAL fsync.
pub(super) fn run_checkpointer(
    conn: Connection,
    stop: std::sync::mpsc::Receiver<()>,
    wal_frames: Arc<AtomicU64>,
) {
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
        stop.recv_timeout(CHECKPOINT_INTERVAL)
    {
        match checkpoint(&conn) {
            Ok((_, log, _)) => wal_frames.store(log, Ordering::Relaxed),
            Err(error) => tracing::warn!(%error, "WAL checkpoint failed; retrying later"),
        }
    }
}

/// The writer finishes a checkpoint itself once the WAL holds this many frames (of one page
/// each), so the WAL restarts from its beginning and stays about this size.
pub(super) const WAL_RESTART_FRAMES: u64 = 4096;

/// Runs a PASSIVE checkpoint: (busy, frames in the WAL, frames copied into the database).
pub(super) fn checkpoint(conn: &Connection) -> rusqlite::Result<(bool, u64, u64)> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok((
            row.get::<_, i64>(0)? != 0,
            u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0),
            u64::try_from(row.get::<_, i64>(2)?).unwrap_or(0),
        ))
    })
}
