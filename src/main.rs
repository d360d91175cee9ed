//! The `alicloud-bgp-operator` binary: all behaviour lives in the library.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    alicloud_bgp_operator::cli::main().await
}
