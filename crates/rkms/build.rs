//! Tells the tests whether a PostgreSQL database is there for them: with `RKMS_TEST_POSTGRES`
//! set (scripts/with-postgres.sh sets it), the PostgreSQL tests run; without it they are
//! reported as ignored with the reason, never as passed.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(rkms_test_postgres)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=RKMS_TEST_POSTGRES");
    if std::env::var_os("RKMS_TEST_POSTGRES").is_some_and(|v| !v.is_empty()) {
        println!("cargo::rustc-cfg=rkms_test_postgres");
    }
}
