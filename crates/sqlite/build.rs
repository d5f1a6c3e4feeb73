//! `sqlx::migrate!` embeds the migrations when the crate compiles; this
//! makes a new or changed migration file compile it again.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
