//! The `alicloud-bgp-operator` binary: all behaviour lives in the library.

/// jemalloc instead of the system allocator: at 10,000 objects glibc's malloc holds on to a
/// third of the controller's memory as freed but unreturned pages. Its options are compiled in
/// from `.cargo/config.toml`; README "Performance" has the measurements.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    alicloud_bgp_operator::cli::main().await
}
