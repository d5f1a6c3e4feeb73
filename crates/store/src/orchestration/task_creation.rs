//! The pure policy of creating tasks in a batch: which items are written
//! and which are answered with the task of an earlier item holding the same
//! idempotency key. Creation itself stays a backend method (a bulk insert,
//! not a `TaskRun` over locked rows); every backend shares this decision.

use std::collections::HashMap;

use crate::TaskCreate;

/// What a batch writes: the items to insert, in order, and the items whose
/// key an earlier item of the batch holds, as (item, earlier item).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Creations {
    pub write: Vec<usize>,
    pub same_key_as: Vec<(usize, usize)>,
}

/// Splits `items` into those to write and those sharing an idempotency key
/// (within one namespace) with an earlier item: the first writes, the
/// others are answered with its task. `namespaces[i]` is item `i`'s
/// namespace, `None` when the item is refused already (neither written nor
/// holding its key).
pub fn creations(items: &[TaskCreate], namespaces: &[Option<&str>]) -> Creations {
    let mut creations = Creations::default();
    let mut first_with_key: HashMap<(&str, &str), usize> = HashMap::new();
    for (i, (item, namespace)) in items.iter().zip(namespaces).enumerate() {
        let Some(namespace) = namespace else {
            continue;
        };
        if let Some(key) = &item.idempotency_key {
            match first_with_key.entry((namespace, key.as_str())) {
                std::collections::hash_map::Entry::Occupied(first) => {
                    creations.same_key_as.push((i, *first.get()));
                    continue;
                }
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(i);
                }
            }
        }
        creations.write.push(i);
    }
    creations
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn item(key: Option<&str>) -> TaskCreate {
        TaskCreate {
            template_id: Uuid::nil(),
            context: serde_json::Value::Null,
            idempotency_key: key.map(str::to_owned),
            tags: Vec::new(),
            deadline: None,
        }
    }

    #[test]
    fn a_key_is_written_once_per_namespace_by_its_first_item() {
        let items = [
            item(Some("k")),
            item(None),
            item(Some("k")),
            item(Some("k")),
            item(None),
        ];
        let namespaces = [
            Some("orders"),
            Some("orders"),
            Some("orders"),
            Some("billing"),
            Some("orders"),
        ];
        assert_eq!(
            creations(&items, &namespaces),
            Creations {
                write: vec![0, 1, 3, 4],
                same_key_as: vec![(2, 0)],
            }
        );
    }

    #[test]
    fn a_refused_item_neither_writes_nor_holds_its_key() {
        let items = [item(Some("k")), item(Some("k"))];
        assert_eq!(
            creations(&items, &[None, Some("orders")]),
            Creations {
                write: vec![1],
                same_key_as: Vec::new(),
            }
        );
    }
}
