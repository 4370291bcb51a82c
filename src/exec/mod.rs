//! Running a program as the target user: the library under the shim applet ([`crate::shim`])
//! and the entrypoint ([`crate::entrypoint`]).
//!
//! Threat model: the caller is root inside the container and means well; the danger is running
//! on as root after a drop that silently failed, or handing the program what root's session
//! holds (its descriptors, its terminal). So every failure refuses (exit 126) instead of
//! continuing: the real program is checked before anything else ([`program`]), the drop is
//! verified before exec ([`privdrop`]), and a terminal session gets the relay ([`launch`]).

mod launch;
mod privdrop;
mod program;
mod recorded;

pub use launch::{Launch, Prepared, run_as_target, target};
pub use privdrop::Caller;
pub use program::{check_program, real_program, refuse_setuid, self_exe};
