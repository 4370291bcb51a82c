//! The `hermes-shim` binary: the process entry point (`start`) over the library, which holds
//! every applet (see `src/lib.rs`).
// The process starts at `start::main`, not through Rust's runtime start-up: see there.
#![cfg_attr(not(test), no_main)]

#[cfg(not(test))]
mod start;
