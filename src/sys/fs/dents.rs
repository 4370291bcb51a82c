//! Reading a directory with getdents64 into a buffer of our own, and the parser of its records
//! (a name never holds a `/` or a NUL; a malformed record is an I/O error, never a panic).

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;
use nix::libc;
use nix::unistd::{self, Whence};

/// Puts a directory fd back at a position a getdents entry reported as its `d_off`.
pub fn seek_dir(fd: BorrowedFd, cookie: i64) -> Result<(), Errno> {
    unistd::lseek(fd, cookie, Whence::SeekSet).map(drop)
}

/// The fixed part of a getdents64 record, before the name: `struct linux_dirent64 { u64 d_ino;
/// i64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }`.
const HEADER: usize = 19;

/// A buffered reader of getdents64 records; position lives in the directory fd.
pub struct DirBuf {
    buf: Vec<u8>,
    pos: usize,
    len: usize,
}

/// One directory entry's type and resume cookie; its name goes to the caller's buffer.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// The getdents `d_type` (`DT_DIR`, `DT_UNKNOWN`, …).
    pub d_type: u8,
    /// Where the directory stream continues after this entry.
    pub off: i64,
}

/// The getdents type of a directory (other types are confirmed with statx).
pub const DT_DIR: u8 = libc::DT_DIR;

impl DirBuf {
    /// The buffer the walks use: 16 KiB, some 60 records of the longest name (280 bytes each)
    /// and hundreds of ordinary ones per getdents64 call.
    pub const WALK: usize = 16_384;

    /// A reader with a `cap`-byte buffer.
    pub fn new(cap: usize) -> DirBuf {
        DirBuf {
            buf: vec![0; cap],
            pos: 0,
            len: 0,
        }
    }

    /// The next entry other than `.` and `..`, its NUL-terminated name copied into `name`.
    pub fn next(&mut self, fd: BorrowedFd, name: &mut Vec<u8>) -> Result<Option<Entry>, Errno> {
        loop {
            if self.pos >= self.len {
                // SAFETY: the kernel writes at most `buf.len()` bytes into our buffer.
                let n = unsafe {
                    libc::syscall(
                        libc::SYS_getdents64,
                        fd.as_raw_fd(),
                        self.buf.as_mut_ptr(),
                        self.buf.len(),
                    )
                };
                let n = Errno::result(n)?;
                if n == 0 {
                    return Ok(None);
                }
                self.pos = 0;
                self.len = usize::try_from(n).map_err(|_| Errno::EIO)?;
            }
            let (entry, n, reclen) = record(&self.buf[self.pos..self.len])?;
            self.pos += reclen;
            if n == b"." || n == b".." || n.is_empty() {
                continue;
            }
            name.clear();
            name.extend_from_slice(n);
            name.push(0);
            return Ok(Some(entry));
        }
    }
}

/// The first getdents64 record of `rec`: its entry, its name (up to the NUL) and its length.
/// The kernel's records are well formed; a bad one would be a kernel bug, reported as an I/O
/// error on this directory rather than a panic.
pub fn record(rec: &[u8]) -> Result<(Entry, &[u8], usize), Errno> {
    if rec.len() < HEADER {
        return Err(Errno::EIO);
    }
    let off = i64::from_ne_bytes(rec[8..16].try_into().expect("8 bytes"));
    let reclen = usize::from(u16::from_ne_bytes(rec[16..18].try_into().expect("2 bytes")));
    if reclen < HEADER || reclen > rec.len() {
        return Err(Errno::EIO);
    }
    let d_type = rec[18];
    let raw = &rec[HEADER..reclen];
    let nul = raw.iter().position(|b| *b == 0).unwrap_or(raw.len());
    Ok((Entry { d_type, off }, &raw[..nul], reclen))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::os::fd::{AsFd, OwnedFd};

    /// A getdents64 record as the kernel lays it out, padded to 8 bytes.
    fn rec(off: i64, d_type: u8, name: &[u8]) -> Vec<u8> {
        let len = (HEADER + name.len() + 1).next_multiple_of(8);
        let mut r = vec![0u8; len];
        r[0..8].copy_from_slice(&7u64.to_ne_bytes());
        r[8..16].copy_from_slice(&off.to_ne_bytes());
        r[16..18].copy_from_slice(&u16::try_from(len).unwrap().to_ne_bytes());
        r[18] = d_type;
        r[HEADER..HEADER + name.len()].copy_from_slice(name);
        r
    }

    #[test]
    fn records_are_read_as_the_kernel_lays_them_out() {
        let r = rec(42, DT_DIR, b"name");
        let (e, name, len) = record(&r).unwrap();
        assert_eq!((e.off, e.d_type, name, len), (42, DT_DIR, &b"name"[..], 24));
        // Two in a row: the first's length says where the second starts.
        let two = [rec(1, 8, b"a"), rec(2, 4, b"bb")].concat();
        let (_, first, len) = record(&two).unwrap();
        let (second, name, _) = record(&two[len..]).unwrap();
        assert_eq!((first, second.off, name), (&b"a"[..], 2, &b"bb"[..]));
    }

    #[test]
    fn a_malformed_record_is_an_io_error_not_a_panic() {
        let good = rec(1, 8, b"x");
        assert_eq!(
            record(&good[..HEADER - 1]).unwrap_err(),
            Errno::EIO,
            "short"
        );
        let mut long = good.clone();
        long[16..18].copy_from_slice(&200u16.to_ne_bytes());
        assert_eq!(
            record(&long).unwrap_err(),
            Errno::EIO,
            "longer than the buffer"
        );
        let mut tiny = good.clone();
        tiny[16..18].copy_from_slice(&4u16.to_ne_bytes());
        assert_eq!(
            record(&tiny).unwrap_err(),
            Errno::EIO,
            "shorter than a header"
        );
        // The bounds are exact: a record of the header alone, in a buffer of just that, reads
        // (as an empty name, which no kernel sends and DirBuf::next skips).
        let mut header = good[..HEADER].to_vec();
        header[16..18].copy_from_slice(&u16::try_from(HEADER).unwrap().to_ne_bytes());
        let (e, name, len) = record(&header).unwrap();
        assert_eq!((e.off, name, len), (1, &b""[..], HEADER));
    }

    /// A real directory read through a buffer so small that every call returns one record:
    /// every name once, `.` and `..` never, and the resume cookie puts a fresh reader back
    /// after the entries already taken.
    #[test]
    fn a_directory_is_read_whole_through_a_small_buffer_and_resumed_by_cookie() {
        let tmp = crate::testing::TempDir::new("dirent");
        let dir = tmp.path();
        let want: BTreeSet<Vec<u8>> = (0..50)
            .map(|i| format!("entry-{i:02}").into_bytes())
            .collect();
        for n in &want {
            std::fs::write(dir.join(std::str::from_utf8(n).unwrap()), "").unwrap();
        }
        let fd: OwnedFd = std::fs::File::open(dir).unwrap().into();
        let mut buf = DirBuf::new(40);
        let mut name = Vec::new();
        let mut seen = BTreeSet::new();
        let mut cookie = None;
        while let Some(e) = buf.next(fd.as_fd(), &mut name).unwrap() {
            assert_eq!(name.pop(), Some(0), "NUL-terminated");
            assert!(seen.insert(name.clone()), "{name:?} twice");
            if seen.len() == 20 {
                cookie = Some(e.off);
                break;
            }
        }
        // Resume from the cookie in a new reader, as a reopened frame does.
        seek_dir(fd.as_fd(), cookie.unwrap()).unwrap();
        let mut buf = DirBuf::new(4096);
        while let Some(_e) = buf.next(fd.as_fd(), &mut name).unwrap() {
            name.pop();
            assert!(seen.insert(name.clone()), "{name:?} twice");
        }
        assert_eq!(seen, want);
    }
}
