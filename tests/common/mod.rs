//! Data shared by integration tests (each test binary uses part of it).
#![allow(dead_code)]

pub mod image_create_replay;
