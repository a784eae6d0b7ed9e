//! The small tar archives the engine's archive API takes and gives: secret files to upload
//! into a created container, and one file read back from it (`/etc/passwd`).

/// One regular file for [`tar`].
pub struct TarFile<'a> {
    /// Path inside the container, absolute or relative to `/`.
    pub path: &'a str,
    pub data: &'a [u8],
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// A ustar archive of `files`, to extract at `/`. Parent directories are left out: the engine
/// creates missing ones (root, 0755) and leaves existing ones as they are.
pub fn tar(files: &[TarFile<'_>]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for f in files {
        let path = f.path.trim_start_matches('/');
        let (prefix, name) = split_name(path)
            .ok_or_else(|| format!("the path {} is too long for a tar archive", f.path))?;
        let mut header = [0u8; 512];
        header[..name.len()].copy_from_slice(name.as_bytes());
        octal(&mut header[100..108], u64::from(f.mode));
        octal(&mut header[108..116], u64::from(f.uid));
        octal(&mut header[116..124], u64::from(f.gid));
        octal(&mut header[124..136], f.data.len() as u64);
        octal(&mut header[136..148], 0);
        header[156] = b'0';
        header[257..263].copy_from_slice(b"ustar\0");
        header[263..265].copy_from_slice(b"00");
        header[345..345 + prefix.len()].copy_from_slice(prefix.as_bytes());
        header[148..156].copy_from_slice(b"        ");
        let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
        header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(f.data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    Ok(out)
}

/// The contents of the first regular file in a tar archive.
pub fn first_file(archive: &[u8]) -> Option<Vec<u8>> {
    let mut at = 0;
    while at + 512 <= archive.len() {
        let header = &archive[at..at + 512];
        if header.iter().all(|b| *b == 0) {
            return None;
        }
        let size_text = std::str::from_utf8(&header[124..136]).ok()?;
        let size = u64::from_str_radix(size_text.trim_matches(|c| c == '\0' || c == ' '), 8).ok()?
            as usize;
        let start = at + 512;
        if matches!(header[156], b'0' | 0) {
            return archive.get(start..start + size).map(<[u8]>::to_vec);
        }
        at = start + size.div_ceil(512) * 512;
    }
    None
}

/// Splits a path into ustar's prefix (at most 155 bytes) and name (at most 100 bytes).
fn split_name(path: &str) -> Option<(&str, &str)> {
    if path.len() <= 100 {
        return Some(("", path));
    }
    path.char_indices()
        .filter(|(_, c)| *c == '/')
        .map(|(i, _)| (&path[..i], &path[i + 1..]))
        .find(|(p, n)| p.len() <= 155 && n.len() <= 100 && !n.is_empty())
}

fn octal(field: &mut [u8], value: u64) {
    let text = format!("{value:0width$o}\0", width = field.len() - 1);
    field.copy_from_slice(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_survives_the_round_trip_with_its_owner_and_mode() {
        let archive = tar(&[TarFile {
            path: "/run/secrets/TOKEN",
            data: b"s3cret",
            mode: 0o400,
            uid: 1000,
            gid: 1001,
        }])
        .expect("tar");
        assert_eq!(archive.len() % 512, 0);
        assert_eq!(&archive[..18], b"run/secrets/TOKEN\0");
        assert_eq!(&archive[100..107], b"0000400");
        assert_eq!(&archive[108..115], b"0001750");
        assert_eq!(&archive[116..123], b"0001751");
        assert_eq!(first_file(&archive).as_deref(), Some(&b"s3cret"[..]));
    }

    #[test]
    fn long_paths_use_the_prefix_field() {
        let path = format!("/{}/{}", "d".repeat(120), "f".repeat(50));
        let archive = tar(&[TarFile {
            path: &path,
            data: b"",
            mode: 0o400,
            uid: 0,
            gid: 0,
        }])
        .expect("tar");
        assert_eq!(&archive[345..465], "d".repeat(120).as_bytes());
        assert!(tar(&[TarFile {
            path: &"x".repeat(300),
            data: b"",
            mode: 0o400,
            uid: 0,
            gid: 0
        }])
        .is_err());
    }
}
