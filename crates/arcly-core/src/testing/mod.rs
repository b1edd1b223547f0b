//! Helpers that downstream crates and users test with: in-memory sources,
//! sinks and publishers, synthetic frames, and locators for the external
//! programs used by interop tests.

pub mod tools;
