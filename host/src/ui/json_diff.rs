//! Where two versions of a resource differ: the JSON paths that differ between them, and each
//! version as pretty-printed lines labelled with their paths, so the conflict page can mark
//! the differing lines on both sides. Pure; every walk stops at a depth limit.

use std::collections::BTreeSet;

use serde_json::Value;

/// Deeper than this, a subtree is compared and shown as one value.
const MAX_DEPTH: usize = 32;

/// The paths (`name[0].family`) whose values differ between `a` and `b`. A key present on one
/// side only is a differing path; equal subtrees contribute nothing.
pub fn differing_paths(a: &Value, b: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    walk(a, b, String::new(), 0, &mut out);
    out
}

fn walk(a: &Value, b: &Value, path: String, depth: usize, out: &mut BTreeSet<String>) {
    if a == b {
        return;
    }
    if depth >= MAX_DEPTH {
        out.insert(path);
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for key in keys {
                let child = join(&path, key);
                match (x.get(key), y.get(key)) {
                    (Some(l), Some(r)) => walk(l, r, child, depth + 1, out),
                    _ => {
                        out.insert(child);
                    }
                }
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            for i in 0..x.len().max(y.len()) {
                let child = format!("{path}[{i}]");
                match (x.get(i), y.get(i)) {
                    (Some(l), Some(r)) => walk(l, r, child, depth + 1, out),
                    _ => {
                        out.insert(child);
                    }
                }
            }
        }
        _ => {
            out.insert(path);
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// One line of a pretty-printed document and the path it shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub path: String,
    pub text: String,
}

/// `value` pretty-printed, one [`Line`] per line.
pub fn lines(value: &Value) -> Vec<Line> {
    let mut out = Vec::new();
    print(value, String::new(), "", 0, true, &mut out);
    out
}

fn print(value: &Value, path: String, label: &str, depth: usize, last: bool, out: &mut Vec<Line>) {
    let indent = "  ".repeat(depth);
    let comma = if last { "" } else { "," };
    let compact = |v: &Value| serde_json::to_string(v).unwrap_or_default();
    let (open, close, children): (&str, &str, Vec<(String, String, &Value)>) = match value {
        Value::Object(map) if depth < MAX_DEPTH && !map.is_empty() => (
            "{",
            "}",
            map.iter()
                .map(|(k, v)| {
                    (
                        join(&path, k),
                        format!("{}: ", compact(&Value::String(k.clone()))),
                        v,
                    )
                })
                .collect(),
        ),
        Value::Array(items) if depth < MAX_DEPTH && !items.is_empty() => (
            "[",
            "]",
            items
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("{path}[{i}]"), String::new(), v))
                .collect(),
        ),
        scalar => {
            out.push(Line {
                text: format!("{indent}{label}{}{comma}", compact(scalar)),
                path,
            });
            return;
        }
    };
    out.push(Line {
        text: format!("{indent}{label}{open}"),
        path: path.clone(),
    });
    let count = children.len();
    for (i, (child_path, child_label, child)) in children.into_iter().enumerate() {
        print(
            child,
            child_path,
            &child_label,
            depth + 1,
            i + 1 == count,
            out,
        );
    }
    out.push(Line {
        text: format!("{indent}{close}{comma}"),
        path,
    });
}

/// Whether `path` is one of `differing` or lies inside one of them.
pub fn is_marked(path: &str, differing: &BTreeSet<String>) -> bool {
    differing.iter().any(|d| {
        path == d
            || (path.starts_with(d.as_str())
                && matches!(path.as_bytes().get(d.len()), Some(b'.') | Some(b'['))
                && !d.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_the_paths_that_differ() {
        let a = json!({"id": "p", "name": [{"family": "Otieno", "given": ["Amina"]}], "gender": "female"});
        let b = json!({"id": "p", "name": [{"family": "Wekesa", "given": ["Amina"]}], "birthDate": "1984"});
        let paths: Vec<String> = differing_paths(&a, &b).into_iter().collect();
        assert_eq!(paths, ["birthDate", "gender", "name[0].family"]);
    }

    #[test]
    fn lines_carry_their_paths_and_marks_cover_subtrees() {
        let value = json!({"name": [{"family": "Otieno"}], "active": true});
        let printed = lines(&value);
        let text: Vec<&str> = printed.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(
            text,
            [
                "{",
                "  \"active\": true,",
                "  \"name\": [",
                "    {",
                "      \"family\": \"Otieno\"",
                "    }",
                "  ]",
                "}"
            ]
        );
        let differing = BTreeSet::from(["name[0]".to_string()]);
        let marked: Vec<bool> = printed
            .iter()
            .map(|l| is_marked(&l.path, &differing))
            .collect();
        assert_eq!(
            marked,
            [false, false, false, true, true, true, false, false]
        );
    }

    #[test]
    fn a_deep_document_stops_at_the_limit() {
        let mut deep = json!(1);
        for _ in 0..200 {
            deep = json!({ "a": deep });
        }
        let paths = differing_paths(&deep, &json!({ "a": 2 }));
        assert_eq!(paths.len(), 1);
        assert!(lines(&deep).len() < 2 * MAX_DEPTH + 3);
    }
}
