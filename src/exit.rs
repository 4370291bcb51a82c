//! How an applet ends: one type for all of them, turned into the process's exit code by the
//! binary's entry point (`src/start.rs`).

/// An applet's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Done: nothing failed (fix-ownership, boot, install).
    Ok,
    /// Done, but some entry could not be fixed (fix-ownership); something needs fixing (doctor).
    Partial,
    /// Refused before changing anything (fix-ownership, boot, install; a bad setting).
    Refused,
    /// The program was not run: the drop or a check refused (shim, exec, entrypoint).
    NotRun,
    /// The program is missing or cannot be executed (shim, exec, entrypoint).
    NotFound,
    /// The program's own exit status, as the init passes it on.
    Program(u8),
}

impl Exit {
    /// The exit code.
    #[must_use]
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Partial => 1,
            Exit::Refused => 2,
            Exit::NotRun => 126,
            Exit::NotFound => 127,
            Exit::Program(code) => code,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_documented_ones() {
        let table = [
            (Exit::Ok, 0),
            (Exit::Partial, 1),
            (Exit::Refused, 2),
            (Exit::NotRun, 126),
            (Exit::NotFound, 127),
            (Exit::Program(42), 42),
        ];
        for (exit, code) in table {
            assert_eq!(exit.code(), code, "{exit:?}");
        }
    }
}
