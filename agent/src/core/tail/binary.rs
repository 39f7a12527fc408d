//! Binary files among the logs: `/var/log/*` also matches `wtmp`, `btmp` and `lastlog`
//! (fixed-size login records, `lastlog` a sparse file of a gigabyte or more, mostly
//! zeros) and the journal's own files. Tailed as text, they became events of NUL-padded
//! garbage, and `lastlog` a gigabyte of reading. A file is taken for binary by the rule
//! `grep` and `git` use: a NUL byte in its head. Only a file the tail does not follow yet
//! is judged (a followed log that later shows a NUL is still read; its line keeps it).

/// Whether `head` (a new file's first bytes, fingerprint-long) is binary.
pub fn looks_binary(head: &[u8]) -> bool {
    memchr::memchr(0, head).is_some()
}

#[cfg(test)]
mod tests {
    use super::looks_binary;

    #[test]
    fn login_records_and_sparse_files_are_binary_and_text_is_not() {
        // A wtmp record: type USER_PROCESS (7), then the pid and the NUL-padded line.
        let mut wtmp = vec![7, 0, 0, 0, 0x39, 0x30, 0, 0];
        wtmp.extend_from_slice(b"pts/0");
        wtmp.resize(384, 0);
        assert!(looks_binary(&wtmp));
        assert!(looks_binary(&[0; 1024]), "lastlog's sparse head");
        assert!(!looks_binary(
            b"Jan 15 00:00:00 web-02 sshd[1]: Accepted password\n"
        ));
        assert!(!looks_binary(
            "héllo wörld, UTF-8 and \t tabs\r\n".as_bytes()
        ));
        assert!(!looks_binary(b""));
    }
}
