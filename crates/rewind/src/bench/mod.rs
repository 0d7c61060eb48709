//! `rewind bench`: measurements that print their figures beside a ceiling or a baseline
//! measured in the same run.

pub mod api;
pub mod jobs;
