//! Files for the `io::copy` tests (`io_copy.rs`, `io_copy_one_worker.rs`).

use std::fs::File;

/// Bytes that reveal a dropped, repeated or reordered block (unlike `util::pattern`, no
/// period shorter than 64 KiB).
pub fn block_pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 65536) as u8).collect()
}

/// An open file holding `data`, already unlinked; `tag` keeps tests running at once apart.
pub fn temp_file(tag: &str, data: &[u8]) -> File {
    let path = std::env::temp_dir().join(format!("coronet-io-{tag}-{}", std::process::id()));
    std::fs::write(&path, data).unwrap();
    let f = File::open(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    f
}
