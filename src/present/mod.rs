//! Presentation shared by the command line and the admin UI: the JSON
//! objects scripts rely on (docs/cli-json.md) and how values read for people.

pub mod json;
pub mod units;
