//! Tests by area.

mod auth;
mod conventions;
mod resources;
mod restore_jobs;
mod validation;
