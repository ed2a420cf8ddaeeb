//! `rkms bench`: a load generator for any KMS host, and `rkms null-server`, a canned-reply
//! server that measures the machine's own limit.

mod load;
mod null_server;
mod report;

pub use load::{run, BenchOptions, Mode};
pub use null_server::serve as null_server;
pub use report::Summary;
