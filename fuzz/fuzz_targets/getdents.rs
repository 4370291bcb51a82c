//! The getdents64 record parser on crafted buffers: a record is read where the kernel's layout
//! puts it, a name never runs past its record or holds a NUL, and a malformed record is an
//! error, never a panic or a loop.
#![no_main]

use hermes_shim::fuzzing::getdents_record;
use libfuzzer_sys::fuzz_target;

/// `struct linux_dirent64 { u64 d_ino; i64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }`
const HEADER: usize = 19;

fuzz_target!(|data: &[u8]| {
    let mut pos = 0;
    while pos < data.len() {
        let rest = &data[pos..];
        let Ok((entry, name, reclen)) = getdents_record(rest) else {
            // Only a short buffer or a record length outside [HEADER, rest] is refused.
            let declared = rest
                .get(16..18)
                .map(|b| usize::from(u16::from_ne_bytes([b[0], b[1]])));
            assert!(
                rest.len() < HEADER || declared.is_some_and(|n| n < HEADER || n > rest.len()),
                "a well-formed record refused at {pos}"
            );
            return;
        };
        assert!((HEADER..=rest.len()).contains(&reclen));
        assert_eq!(
            reclen,
            usize::from(u16::from_ne_bytes([rest[16], rest[17]]))
        );
        assert_eq!(
            entry.off,
            i64::from_ne_bytes(rest[8..16].try_into().unwrap())
        );
        assert_eq!(entry.d_type, rest[18]);
        let raw = &rest[HEADER..reclen];
        let nul = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
        assert_eq!(name, &raw[..nul]);
        pos += reclen;
    }
});
