//! Prints the admin URL of the throwaway PostgreSQL the tests use, starting
//! it first when it is not running. `scripts/dev` uses it on machines with
//! PostgreSQL's server binaries but no running server.

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    println!("{}", tasker_testkit::server_url().await?);
    Ok(())
}
