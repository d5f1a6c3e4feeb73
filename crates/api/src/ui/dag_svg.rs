//! The step graph as inline SVG: a layered layout computed here, left to
//! right, so no script and no layout library is needed in the browser.
//!
//! ```text
//!  layer 0      layer 1      layer 2
//!  ┌──────┐     ┌──────┐
//!  │ a    │────▶│ b    │──┐  ┌──────┐
//!  └──────┘  └─▶┌──────┐  └─▶│ d    │
//!               │ c    │────▶└──────┘
//!               └──────┘
//! ```
//!
//! A node's layer is the length of the longest path from a root to it, so
//! every edge points right. Within a layer nodes are ordered by the mean
//! position of their parents (the barycenter heuristic), which keeps most
//! edges from crossing. The graph is already known to be acyclic (templates
//! are validated); a cycle here would only be drawn badly, never loop.

use std::fmt::Write;

use super::html::esc;

/// One node to draw.
#[derive(Debug, Clone)]
pub struct GraphNode {
    pub name: String,
    /// Indices of the parents in the same slice.
    pub parents: Vec<usize>,
    /// Colours the node (`state-<state>` in the stylesheet); `None` for a
    /// template's graph.
    pub state: Option<String>,
    /// A second line under the name, e.g. the attempt or the handler.
    pub detail: String,
}

const NODE_W: usize = 150;
const NODE_H: usize = 44;
const GAP_X: usize = 56;
const GAP_Y: usize = 18;
const PAD: usize = 8;
/// Names longer than this are cut (the full name is in the tooltip).
const MAX_LABEL: usize = 18;

/// Layer (column) and row of every node.
pub fn layout(nodes: &[GraphNode]) -> Vec<(usize, usize)> {
    let n = nodes.len();
    let mut layer = vec![0usize; n];
    // Longest path by relaxation; at most n rounds, fewer for any real DAG.
    for _ in 0..n {
        let mut changed = false;
        for (i, node) in nodes.iter().enumerate() {
            for &p in &node.parents {
                if p < n && p != i && layer[i] < layer[p] + 1 && layer[p] + 1 < n {
                    layer[i] = layer[p] + 1;
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    let layers = layer.iter().copied().max().map_or(0, |m| m + 1);
    let mut row = vec![0usize; n];
    let mut columns: Vec<Vec<usize>> = vec![Vec::new(); layers];
    for (i, &l) in layer.iter().enumerate() {
        columns[l].push(i);
    }
    for column in columns.iter_mut() {
        let mut keyed: Vec<(f64, usize)> = column
            .iter()
            .map(|&i| {
                let parents: Vec<f64> = nodes[i]
                    .parents
                    .iter()
                    .filter(|&&p| p < n)
                    .map(|&p| row[p] as f64)
                    .collect();
                let key = if parents.is_empty() {
                    i as f64
                } else {
                    parents.iter().sum::<f64>() / parents.len() as f64
                };
                (key, i)
            })
            .collect();
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for (r, (_, i)) in keyed.iter().enumerate() {
            row[*i] = r;
        }
        *column = keyed.into_iter().map(|(_, i)| i).collect();
    }
    layer.into_iter().zip(row).collect()
}

fn label(name: &str) -> String {
    if name.chars().count() <= MAX_LABEL {
        name.to_owned()
    } else {
        let cut: String = name.chars().take(MAX_LABEL - 1).collect();
        format!("{cut}…")
    }
}

/// The graph as an `<svg>` element sized to fit, scaling down in narrow
/// windows.
pub fn render(nodes: &[GraphNode], title: &str) -> String {
    let places = layout(nodes);
    let columns = places.iter().map(|p| p.0 + 1).max().unwrap_or(1);
    let rows = places.iter().map(|p| p.1 + 1).max().unwrap_or(1);
    let width = PAD * 2 + columns * NODE_W + (columns - 1) * GAP_X;
    let height = PAD * 2 + rows * NODE_H + (rows - 1) * GAP_Y;
    let at = |i: usize| {
        let (l, r) = places[i];
        (PAD + l * (NODE_W + GAP_X), PAD + r * (NODE_H + GAP_Y))
    };
    let mut out = format!(
        "<svg class=\"dag\" role=\"img\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" \
         height=\"{height}\" xmlns=\"http://www.w3.org/2000/svg\"><title>{}</title>\
         <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" \
         markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0L10,5L0,10z\"/></marker></defs>",
        esc(title)
    );
    for (i, node) in nodes.iter().enumerate() {
        for &p in &node.parents {
            if p >= nodes.len() || p == i {
                continue;
            }
            let (px, py) = at(p);
            let (cx, cy) = at(i);
            let (x1, y1) = (px + NODE_W, py + NODE_H / 2);
            let (x2, y2) = (cx, cy + NODE_H / 2);
            let mid = (x1 + x2) / 2;
            let _ = write!(
                out,
                "<path class=\"edge\" d=\"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}\" \
                 marker-end=\"url(#arrow)\"/>"
            );
        }
    }
    for (i, node) in nodes.iter().enumerate() {
        let (x, y) = at(i);
        let state = node.state.as_deref().unwrap_or("template");
        let _ = write!(
            out,
            "<g class=\"node state-{state}\" data-step=\"{name}\" data-state=\"{state}\">\
             <title>{name}{sep}{detail}</title>\
             <rect x=\"{x}\" y=\"{y}\" width=\"{NODE_W}\" height=\"{NODE_H}\" rx=\"6\"/>\
             <text x=\"{tx}\" y=\"{ty1}\" class=\"name\">{label}</text>\
             <text x=\"{tx}\" y=\"{ty2}\" class=\"detail\">{short}</text></g>",
            state = esc(state),
            name = esc(&node.name),
            sep = if node.detail.is_empty() { "" } else { ": " },
            detail = esc(&node.detail),
            tx = x + 10,
            ty1 = y + 18,
            ty2 = y + 35,
            label = esc(&label(&node.name)),
            short = esc(&label(&node.detail)),
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &[&str])]) -> Vec<GraphNode> {
        let names: Vec<&str> = edges.iter().map(|(n, _)| *n).collect();
        edges
            .iter()
            .map(|(name, parents)| GraphNode {
                name: (*name).into(),
                parents: parents
                    .iter()
                    .map(|p| names.iter().position(|n| n == p).unwrap())
                    .collect(),
                state: Some("pending".into()),
                detail: String::new(),
            })
            .collect()
    }

    #[test]
    fn every_edge_points_to_a_later_layer() {
        let nodes = graph(&[
            ("d", &["b", "c"]),
            ("a", &[]),
            ("b", &["a"]),
            ("c", &["a"]),
            ("e", &["a", "d"]),
        ]);
        let places = layout(&nodes);
        for (i, node) in nodes.iter().enumerate() {
            for &p in &node.parents {
                assert!(
                    places[p].0 < places[i].0,
                    "{} before {}",
                    nodes[p].name,
                    node.name
                );
            }
        }
        assert_eq!(places[1].0, 0, "a root is in the first layer");
        assert_eq!(places[4].0, 3, "e sits after the longest path a-b-d");
    }

    #[test]
    fn no_two_nodes_share_a_place() {
        let nodes = graph(&[
            ("a", &[]),
            ("b", &[]),
            ("c", &["a"]),
            ("d", &["a"]),
            ("e", &["b"]),
        ]);
        let mut places = layout(&nodes);
        places.sort();
        places.dedup();
        assert_eq!(places.len(), nodes.len());
    }

    #[test]
    fn children_follow_their_parents_rows() {
        // b's child is drawn below a's child: fewer crossing edges.
        let nodes = graph(&[("a", &[]), ("b", &[]), ("y", &["b"]), ("x", &["a"])]);
        let places = layout(&nodes);
        assert!(places[3].1 < places[2].1);
    }

    #[test]
    fn a_cycle_is_drawn_without_looping() {
        let nodes = graph(&[("a", &["b"]), ("b", &["a"])]);
        assert_eq!(layout(&nodes).len(), 2);
    }

    #[test]
    fn names_are_escaped_and_states_coloured() {
        let mut nodes = graph(&[("<b>x</b>", &[])]);
        nodes[0].state = Some("failed".into());
        let svg = render(&nodes, "t");
        assert!(svg.contains("&lt;b&gt;x&lt;/b&gt;"));
        assert!(!svg.contains("<b>x"));
        assert!(svg.contains("class=\"node state-failed\""));
    }
}
