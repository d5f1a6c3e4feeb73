//! The example templates of `templates/`, built into the binary so that
//! `tasker dev` registers them wherever it runs from (no checkout needed).
//! The example worker (`tasker_worker::examples`) has a handler for every
//! step of them.

use tasker_engine::Engine;
use tasker_worker::examples;

/// Every file of `templates/`, by name.
pub const TEMPLATES: [(&str, &str); 7] = [
    (
        "linear.yaml",
        include_str!("../../../../../templates/linear.yaml"),
    ),
    (
        "diamond.yaml",
        include_str!("../../../../../templates/diamond.yaml"),
    ),
    (
        "tree.yaml",
        include_str!("../../../../../templates/tree.yaml"),
    ),
    (
        "mixed_dag.yaml",
        include_str!("../../../../../templates/mixed_dag.yaml"),
    ),
    (
        "csv_import.yaml",
        include_str!("../../../../../templates/csv_import.yaml"),
    ),
    (
        "order_routing.yaml",
        include_str!("../../../../../templates/order_routing.yaml"),
    ),
    (
        "order_fulfillment.yaml",
        include_str!("../../../../../templates/order_fulfillment.yaml"),
    ),
];

/// Creates the examples' namespaces and registers every example template
/// (registering the same content again is a no-op, so a restart on the same
/// database changes nothing). Returns `namespace/name@version` of each.
pub async fn register(engine: &Engine) -> anyhow::Result<Vec<String>> {
    for namespace in examples::NAMESPACES {
        engine
            .namespace_create(namespace)
            .await
            .map_err(|e| anyhow::anyhow!("cannot create namespace {namespace}: {e}"))?;
    }
    let mut registered = Vec::new();
    for (file, yaml) in TEMPLATES {
        let (record, _) = engine
            .template_register_yaml(yaml)
            .await
            .map_err(|e| anyhow::anyhow!("cannot register templates/{file}: {e}"))?;
        registered.push(format!(
            "{}/{}@{}",
            record.namespace, record.name, record.version
        ));
    }
    Ok(registered)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file of `templates/` is built in, and every one is valid.
    #[test]
    fn every_template_file_is_built_in_and_valid() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../templates");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".yaml"))
            .collect();
        on_disk.sort();
        let mut built_in: Vec<String> = TEMPLATES.iter().map(|(f, _)| f.to_string()).collect();
        built_in.sort();
        assert_eq!(built_in, on_disk);
        for (file, yaml) in TEMPLATES {
            let template = tasker_engine::template_from_yaml(yaml)
                .unwrap_or_else(|e| panic!("templates/{file}: {e}"));
            assert!(
                examples::NAMESPACES.contains(&template.namespace.as_str()),
                "templates/{file} is in a namespace the example worker polls"
            );
        }
    }
}
