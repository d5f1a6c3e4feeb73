//! Near names for a template that was not found, so that a typo or a wrong
//! namespace is answered with `did you mean examples/linear?` instead of a
//! bare 404. Pure: the caller reads the registered templates.

use tasker_model::TemplateRecord;

/// Most suggestions offered.
const MAX_SUGGESTIONS: usize = 3;

/// Registered templates near `namespace/name`, nearest first: names within a
/// small edit distance in the same namespace, and the same (or a near) name
/// in other namespaces. Each `namespace/name` once. Nothing when the name
/// exists in `namespace` (then only the version was wrong).
pub fn near_templates(templates: &[TemplateRecord], namespace: &str, name: &str) -> Vec<String> {
    if templates
        .iter()
        .any(|t| t.namespace == namespace && t.name == name)
    {
        return Vec::new();
    }
    let mut near: Vec<(usize, bool, String)> = Vec::new();
    for record in templates {
        let reference = format!("{}/{}", record.namespace, record.name);
        if near.iter().any(|(_, _, r)| *r == reference) {
            continue;
        }
        let same_namespace = record.namespace == namespace;
        let distance = edit_distance(&record.name.to_lowercase(), &name.to_lowercase());
        if distance <= tolerance(name) {
            // In a tie, the asked-for namespace first.
            near.push((distance, !same_namespace, reference));
        }
    }
    near.sort();
    near.into_iter()
        .take(MAX_SUGGESTIONS)
        .map(|(_, _, reference)| reference)
        .collect()
}

/// How many edits still look like a typo of `name`: about one per three
/// characters, at least one.
fn tolerance(name: &str) -> usize {
    (name.chars().count() / 3).max(1)
}

/// Levenshtein distance: insertions, deletions and substitutions.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(namespace: &str, name: &str, version: &str) -> TemplateRecord {
        let template = tasker_model::Template::from_yaml(&format!(
            "namespace: {namespace}\nname: {name}\nversion: \"{version}\"\nsteps:\n  - {{ name: a, handler: h.a }}\n"
        ))
        .unwrap();
        TemplateRecord {
            id: uuid::Uuid::now_v7(),
            namespace: namespace.into(),
            name: name.into(),
            version: version.into(),
            content_hash: template.content_hash(),
            definition: template,
            created_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn edit_distance_counts_single_character_edits() {
        assert_eq!(edit_distance("linear", "linear"), 0);
        assert_eq!(edit_distance("linear", "linera"), 2);
        assert_eq!(edit_distance("linear", "lnear"), 1);
        assert_eq!(edit_distance("linear", "linears"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn typos_and_other_namespaces_are_suggested_nearest_first() {
        let templates = [
            record("default", "linear", "1"),
            record("default", "linear", "2"),
            record("examples", "linear", "1"),
            record("examples", "diamond", "1"),
            record("default", "tree", "1"),
        ];
        assert_eq!(
            near_templates(&templates, "default", "linera"),
            ["default/linear", "examples/linear"]
        );
        assert_eq!(
            near_templates(&templates, "default", "diamond"),
            ["examples/diamond"]
        );
        assert_eq!(
            near_templates(&templates, "other", "Linear"),
            ["default/linear", "examples/linear"]
        );
        assert!(near_templates(&templates, "default", "payments").is_empty());
        // The name exists in this namespace: nothing to suggest about it.
        assert!(near_templates(&templates, "examples", "linear").is_empty());
    }
}
