//! Prints the OpenAPI document of the API, for client generators and docs:
//! `cargo run -p tasker-api --example openapi > openapi.json`.

fn main() {
    let doc = tasker_api::openapi(env!("CARGO_PKG_VERSION"));
    println!(
        "{}",
        serde_json::to_string_pretty(&doc).expect("the document serializes")
    );
}
