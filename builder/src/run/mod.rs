//! Running a prepared build: checking and resolving it ([`build`]), the phases and steps in
//! order ([`executor`]), child processes in
//! their own groups ([`process`]), processes that escape them ([`reaper`]) and kiln's own
//! signals ([`signal`]).

pub mod build;
pub mod executor;
pub mod process;
pub mod reaper;
pub mod signal;
