//! Helpers shared by the integration tests (each test crate uses a part).
#![allow(dead_code)]

pub mod memstore;
pub mod seeds;
