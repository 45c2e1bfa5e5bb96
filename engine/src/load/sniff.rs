//! What a file holds, from its first bytes; the extension is only a hint.

use std::path::Path;

/// A tabular file format the loaders read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileFormat {
    /// NumPy `.npy` (`\x93NUMPY`).
    Npy,
    /// Arrow IPC: the file format (Feather v2, `ARROW1`) or the stream format.
    Arrow,
    /// Parquet (`PAR1` at both ends).
    Parquet,
    /// Comma-separated text with a header row.
    Csv,
}

impl FileFormat {
    /// The name users know it by.
    pub fn name(self) -> &'static str {
        match self {
            FileFormat::Npy => "NumPy .npy",
            FileFormat::Arrow => "Arrow IPC",
            FileFormat::Parquet => "Parquet",
            FileFormat::Csv => "CSV",
        }
    }

    /// The format an extension names, if any (lower case, no dot).
    fn from_extension(ext: &str) -> Option<Self> {
        Some(match ext {
            "npy" => FileFormat::Npy,
            "arrow" | "feather" | "ipc" | "arrows" | "arrow_file" | "stream" => FileFormat::Arrow,
            "parquet" | "pq" => FileFormat::Parquet,
            "csv" => FileFormat::Csv,
            _ => return None,
        })
    }
}

/// What the first bytes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Content {
    /// A format the loaders read.
    Table(FileFormat),
    /// Something recognisable that is not a table (an image, an archive, an old format).
    Other(&'static str),
    /// No signature; text without NUL bytes (a CSV candidate).
    Text,
    /// No signature, binary.
    Unknown,
}

/// How many leading bytes [`detect`] needs.
pub(crate) const SNIFF_LEN: usize = 4096;

/// Classifies a file by its first bytes (`head`, up to [`SNIFF_LEN`]) and its last four
/// (`tail`).
fn classify(head: &[u8], tail: &[u8]) -> Content {
    let starts = |m: &[u8]| head.starts_with(m);
    if starts(b"\x93NUMPY") {
        Content::Table(FileFormat::Npy)
    } else if starts(b"ARROW1") || is_arrow_stream(head) {
        Content::Table(FileFormat::Arrow)
    } else if starts(b"PAR1") {
        if tail == b"PAR1" {
            Content::Table(FileFormat::Parquet)
        } else if tail == b"PARE" {
            Content::Other("encrypted Parquet (PARE)")
        } else {
            Content::Other("truncated Parquet (PAR1 at the start, not at the end)")
        }
    } else if starts(b"FEA1") {
        Content::Other("Feather v1 (before Arrow 0.17; rewrite it as Feather v2)")
    } else if starts(&[0xFF, 0xD8, 0xFF]) {
        Content::Other("a JPEG image (use `shmframe resize`)")
    } else if starts(b"\x89PNG\r\n\x1a\n") {
        Content::Other("a PNG image (use `shmframe resize`)")
    } else if starts(b"RIFF") && head.get(8..12) == Some(b"WEBP") {
        Content::Other("a WebP image (use `shmframe resize`)")
    } else if starts(&[0x1F, 0x8B]) {
        Content::Other("gzip-compressed data (decompress it first)")
    } else if starts(&[0x28, 0xB5, 0x2F, 0xFD]) {
        Content::Other("zstd-compressed data (decompress it first)")
    } else if starts(b"BZh") {
        Content::Other("bzip2-compressed data (decompress it first)")
    } else if starts(&[0xFD, b'7', b'z', b'X', b'Z', 0]) {
        Content::Other("xz-compressed data (decompress it first)")
    } else if starts(b"PK\x03\x04") {
        Content::Other("a zip archive (a .npz? extract it first)")
    } else if starts(b"\x89HDF\r\n\x1a\n") {
        Content::Other("HDF5")
    } else if !head.contains(&0) && looks_like_text(head) {
        Content::Text
    } else {
        Content::Unknown
    }
}

/// The stream format begins with a schema message: `0xFFFFFFFF`, a metadata length, then a
/// flatbuffer `Message` whose header is a schema (legacy streams omit the marker).
fn is_arrow_stream(head: &[u8]) -> bool {
    let (prefix, len) = match head.get(0..4) {
        Some([0xFF, 0xFF, 0xFF, 0xFF]) => (8, head.get(4..8)),
        Some(_) => (4, head.get(0..4)),
        None => return false,
    };
    let Some(len) = len.map(|b| i32::from_le_bytes(b.try_into().expect("4 bytes"))) else {
        return false;
    };
    let Some(meta) = usize::try_from(len)
        .ok()
        .filter(|l| *l > 0)
        .and_then(|l| head.get(prefix..prefix + l))
    else {
        return false;
    };
    arrow_ipc::root_as_message(meta)
        .is_ok_and(|m| m.header_type() == arrow_ipc::MessageHeader::Schema)
}

/// UTF-8 (a character may be cut at the end of the sample) without control characters other
/// than tab, CR, LF and form feed.
fn looks_like_text(head: &[u8]) -> bool {
    let valid = match std::str::from_utf8(head) {
        Ok(s) => s,
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(&head[..e.valid_up_to()]).expect("valid prefix")
        }
        Err(_) => return false,
    };
    let valid = valid.strip_prefix('\u{feff}').unwrap_or(valid);
    !valid.is_empty()
        && valid
            .chars()
            .all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r' | '\x0c'))
}

/// The format of `path`, from its content (`head`, `tail`), with its extension as a hint:
/// content with a signature decides; an extension naming another format is an error that
/// names both; text is CSV; a file without a signature whose extension names a binary format
/// is an error saying the signature is missing.
pub(crate) fn detect(path: &Path, head: &[u8], tail: &[u8]) -> Result<FileFormat, String> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let hint = ext.as_deref().and_then(FileFormat::from_extension);
    let contradicts = |content: &str, hinted: FileFormat| {
        format!(
            "the content is {content} but the extension .{} says {}",
            ext.as_deref().unwrap_or(""),
            hinted.name()
        )
    };
    match classify(head, tail) {
        Content::Table(f) => match hint {
            Some(h) if h != f => Err(contradicts(f.name(), h)),
            _ => Ok(f),
        },
        Content::Other(what) => Err(match hint {
            Some(h) => contradicts(what, h),
            None => format!("the content is {what}, not a table"),
        }),
        Content::Text => match hint {
            None | Some(FileFormat::Csv) => Ok(FileFormat::Csv),
            Some(h) => Err(contradicts("text", h)),
        },
        // CSV has no signature: text in another encoding is the CSV reader's to refuse.
        Content::Unknown if hint == Some(FileFormat::Csv) && !head.is_empty() => {
            Ok(FileFormat::Csv)
        }
        Content::Unknown => Err(if head.is_empty() {
            "the file is empty".to_string()
        } else {
            match hint {
                Some(h) => format!(
                    "the extension says {} but the content has no {} signature (starts with {})",
                    h.name(),
                    h.name(),
                    hex(head)
                ),
                None => format!(
                    "unknown content (starts with {}); shmframe reads .npy, Arrow IPC \
                     (file or stream, Feather v2), Parquet and CSV",
                    hex(head)
                ),
            }
        }),
    }
}

fn hex(head: &[u8]) -> String {
    head.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(name: &str, head: &[u8]) -> Result<FileFormat, String> {
        detect(Path::new(name), head, &head[head.len().saturating_sub(4)..])
    }

    #[test]
    fn content_decides_and_the_extension_is_a_hint() {
        assert_eq!(at("a.arrow_file", b"ARROW1\0\0"), Ok(FileFormat::Arrow));
        assert_eq!(at("noext", b"ARROW1\0\0"), Ok(FileFormat::Arrow));
        assert_eq!(
            at("x.ipc", b"\x93NUMPY\x01\0"),
            Err("the content is NumPy .npy but the extension .ipc says Arrow IPC".into())
        );
        assert_eq!(at("t.parquet", b"PAR1....PAR1"), Ok(FileFormat::Parquet));
        assert_eq!(at("t", b"PAR1....PAR1"), Ok(FileFormat::Parquet));
        assert!(
            at("t.parquet", b"PAR1....")
                .unwrap_err()
                .contains("truncated")
        );
        assert_eq!(at("data.txt", b"a,b\n1,2\n"), Ok(FileFormat::Csv));
        assert_eq!(at("data", b"a,b\n1,2\n"), Ok(FileFormat::Csv));
        assert!(
            at("data.npy", b"a,b\n1,2\n")
                .unwrap_err()
                .contains("content is text")
        );
        assert!(
            at("p.csv", b"\xFF\xD8\xFF\xE0")
                .unwrap_err()
                .contains("JPEG")
        );
        assert!(at("p", b"\x1F\x8B\x08\0").unwrap_err().contains("gzip"));
        assert!(
            at("x.arrow", b"\0\x01\x02\x03")
                .unwrap_err()
                .contains("no Arrow IPC signature")
        );
        assert!(at("x.bin", b"").unwrap_err().contains("empty"));
        // Latin-1 text is not UTF-8: not taken for CSV without the extension's word.
        assert!(at("x", b"caf\xe9,1\n").is_err());
    }
}
