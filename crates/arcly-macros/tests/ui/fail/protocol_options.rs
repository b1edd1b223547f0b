//! Attribute mistakes on #[protocol].
use arcly_macros::protocol;

#[protocol(port = 9000)]
struct NoName;

#[protocol(name = line)]
struct BareName;

#[protocol(name = "Line Protocol")]
struct BadName;

#[protocol(name = "line", port = 70000)]
struct BigPort;

#[protocol(name = "line", port = "9000")]
struct QuotedPort;

#[protocol(name = "line", prot = 9000)]
struct UnknownOption;

#[protocol(name = "line")]
fn not_a_type() {}

fn main() {}
