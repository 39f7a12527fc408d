//! Compressed files among the logs: what logrotate's `compress` leaves beside them
//! (`auth.log.2.gz`), which a pattern like `auth.log*` also matches. Their lines were read
//! while the file was live; tailing the archive would turn its compressed bytes into
//! garbage events, so the shell does not tail a file whose head is a compressor's magic
//! number, and says so once.

/// The compressor whose magic number starts `head`, if any: the formats logrotate's
/// `compresscmd` is set to in practice (gzip by default; bzip2, xz, zstd, lz4).
pub fn format_of(head: &[u8]) -> Option<&'static str> {
    const MAGIC: [(&[u8], &str); 5] = [
        (&[0x1f, 0x8b], "gzip"),
        (&[0x28, 0xb5, 0x2f, 0xfd], "zstd"),
        (&[0xfd, b'7', b'z', b'X', b'Z', 0x00], "xz"),
        (&[0x04, 0x22, 0x4d, 0x18], "lz4"),
        (b"BZh", "bzip2"),
    ];
    MAGIC.iter().find_map(|&(magic, name)| match name {
        // "BZh" is text a log line could start with: bzip2 also needs its block size
        // digit and the block magic (pi in BCD) after it.
        "bzip2" => (head.len() >= 10
            && head.starts_with(magic)
            && (b'1'..=b'9').contains(&head[3])
            && head[4..10] == [0x31, 0x41, 0x59, 0x26, 0x53, 0x59])
        .then_some(name),
        _ => head.starts_with(magic).then_some(name),
    })
}

#[cfg(test)]
mod tests {
    use super::format_of;

    #[test]
    fn compressors_are_known_by_their_magic_and_text_is_not() {
        // gzip's header as `gzip -1` writes it: magic, deflate, no flags, mtime, fast, Unix.
        let gz = [
            0x1f, 0x8b, 0x08, 0x00, 0x5c, 0x3d, 0x27, 0x69, 0x04, 0x03, 0xf3, 0xcb,
        ];
        assert_eq!(format_of(&gz), Some("gzip"));
        assert_eq!(format_of(&[0x28, 0xb5, 0x2f, 0xfd, 0x24]), Some("zstd"));
        assert_eq!(format_of(b"\xfd7zXZ\x00\x00\x04"), Some("xz"));
        assert_eq!(format_of(&[0x04, 0x22, 0x4d, 0x18, 0x64]), Some("lz4"));
        assert_eq!(format_of(b"BZh91AY&SY\x00\x00"), Some("bzip2"));
        for text in [
            &b"Nov 26 09:12:01 web-01 sshd[2101]: Accepted publickey"[..],
            b"BZh9 is not a block",
            b"{\"ts\":1}",
            b"",
            b"\x1f",
            "\u{feff}type=SYSCALL".as_bytes(),
        ] {
            assert_eq!(format_of(text), None, "{text:?}");
        }
    }
}
