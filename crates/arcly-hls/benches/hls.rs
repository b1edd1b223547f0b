//! Placeholder: benches land with the playlist module.
fn main() {}
