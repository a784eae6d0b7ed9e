//! Integration tests of the archiver: a real event store in-process, the archiver as an
//! in-process service or as its binary (to be killed), and over a real S3-compatible server
//! (moto).

mod support;

mod kill_and_restore;
mod resume;
mod s3;
mod verify_faults;
