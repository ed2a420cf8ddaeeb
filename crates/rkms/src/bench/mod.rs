//! `rkms bench`: a load generator for any KMS host, and `rkms null-server`, a canned-reply
//! server that measures the machine's own limit.

mod cpu;
mod load;
mod null_server;
mod report;

pub use cpu::CpuTime;
pub use load::{default_threads, run, BenchOptions, Mode};
pub use null_server::serve as null_server;
pub use report::Summary;
