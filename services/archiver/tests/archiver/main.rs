//! Integration tests of the archiver: a real event store in-process, the archiver as an
//! in-process service or as its binary (to be killed).

mod support;

mod kill_and_restore;
mod resume;
mod verify_faults;
