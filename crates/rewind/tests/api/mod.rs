//! Tests by area.

mod auth;
mod conventions;
mod downloads;
mod jobs;
mod postgres;
mod resources;
mod restore_jobs;
mod validation;
