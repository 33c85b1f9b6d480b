//! The rule compiler: imports rule sources into [`model::RuleSet`] and writes
//! channel files that `channel_parser::parse` accepts.
pub mod model;
pub mod import;
pub mod reference;
