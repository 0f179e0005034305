//! tracer: a capturing reverse proxy for OpenStack services.
//!
//! The data path, one module per stage (see docs/LIFECYCLE.md):
//! listener → [`proxy`] → [`capture`] (tee + queue) → [`store`];
//! [`store`] → [`render`] (pure) → [`export`] / [`web`]; [`apiref`] names the
//! documented OpenStack operation of a request.
#![deny(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod apiref;
pub mod attribution;
pub mod capture;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod diff;
pub mod export;
pub mod model;
pub mod present;
pub mod proxy;
pub mod render;
pub mod store;
pub mod timefmt;
pub mod web;
