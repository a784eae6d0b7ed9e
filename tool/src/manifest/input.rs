//! Reading the files a manifest is made of or names (manifests, env files, secret files):
//! regular files only (a device, FIFO or directory is refused by its kind before anything is
//! read), at most `MAX_FILE_BYTES`, and UTF-8, with the place of the first bad byte.

use std::io::Read as _;
use std::os::unix::fs::FileTypeExt as _;
use std::path::Path;

/// Largest manifest, env file or secret file read: 1 MiB.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Why a file could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ReadFailure {
    /// What is wrong, as a lowercase phrase (`it is a FIFO, not a regular file`).
    pub problem: String,
    pub fix: String,
    /// 1-based line and column of the first byte that is not UTF-8.
    pub at: Option<(usize, usize)>,
}

/// `what is N bytes; the limit is 1 MiB`.
pub(super) fn too_large(what: &str, size: u64) -> String {
    format!("{what} is {size} bytes, more than the limit of 1 MiB ({MAX_FILE_BYTES} bytes)")
}

/// Reads `path` as UTF-8 text, refusing anything but a regular file of at most
/// `MAX_FILE_BYTES`.
pub(super) fn read_text(path: &Path) -> Result<String, ReadFailure> {
    let fail = |problem: String, fix: &str| ReadFailure {
        problem,
        fix: fix.to_owned(),
        at: None,
    };
    let io = |e: std::io::Error| fail(e.to_string(), "check the path");
    // The kind is checked before opening: opening a FIFO would already block.
    let meta = std::fs::metadata(path).map_err(io)?;
    check_kind(&meta).map_err(|p| fail(p, "name a regular file"))?;
    let file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    check_kind(&meta).map_err(|p| fail(p, "name a regular file"))?;
    let mut bytes = Vec::new();
    // Read one byte past the limit, so a file that grows after the check is still caught.
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    let size = meta.len().max(bytes.len() as u64);
    if size > MAX_FILE_BYTES {
        return Err(fail(too_large("the file", size), "keep it under 1 MiB"));
    }
    utf8(bytes)
}

/// The text of `bytes`, or where the first invalid UTF-8 byte is.
pub(super) fn utf8(bytes: Vec<u8>) -> Result<String, ReadFailure> {
    String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let good = &e.as_bytes()[..offset];
        let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = good.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        // Valid UTF-8 up to `offset`, so this counts characters.
        let col = String::from_utf8_lossy(&good[line_start..]).chars().count() + 1;
        ReadFailure {
            problem: format!("invalid UTF-8 at line {line}, column {col} (byte offset {offset})"),
            fix: "save the file as UTF-8".to_owned(),
            at: Some((line, col)),
        }
    })
}

/// Refuses what is not a regular file, naming what it is.
fn check_kind(meta: &std::fs::Metadata) -> Result<(), String> {
    let t = meta.file_type();
    let kind = if t.is_file() {
        return Ok(());
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    };
    Err(format!("it is {kind}, not a regular file"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(path: &Path, expected: &str) {
        let got = match read_text(path) {
            Ok(t) => format!("ok: {} bytes", t.len()),
            Err(f) => format!("{}; {}", f.problem, f.fix),
        };
        assert_eq!(got, expected, "{}", path.display());
    }

    // Regression (issue 18): `secrets: {PW: {file: /dev/zero}}` read until memory ran out.
    #[test]
    fn devices_fifos_and_directories_are_refused_before_reading() {
        check(
            Path::new("/dev/zero"),
            "it is a character device, not a regular file; name a regular file",
        );
        check(
            Path::new("/"),
            "it is a directory, not a regular file; name a regular file",
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo runs");
        assert!(made.success());
        check(
            &fifo,
            "it is a FIFO (named pipe), not a regular file; name a regular file",
        );
    }

    #[test]
    fn files_over_the_limit_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'a'; MAX_FILE_BYTES as usize + 1]).expect("write");
        check(
            &big,
            "the file is 1048577 bytes, more than the limit of 1 MiB (1048576 bytes); keep it under 1 MiB",
        );
        let fits = dir.path().join("fits");
        std::fs::write(&fits, vec![b'a'; MAX_FILE_BYTES as usize]).expect("write");
        check(&fits, "ok: 1048576 bytes");
    }

    // Regression (issue 18): invalid UTF-8 said "check the path given with -f" and no place.
    #[test]
    fn invalid_utf8_names_line_column_and_offset() {
        let f = utf8(b"a: 1\nb: \xc3\xa9\xff\n".to_vec()).expect_err("invalid");
        assert_eq!(
            f.problem,
            "invalid UTF-8 at line 2, column 5 (byte offset 10)"
        );
        assert_eq!(f.at, Some((2, 5)));
    }
}
