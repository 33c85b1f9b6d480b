//! Rule-level differences between two channel files (by rule id): rules
//! added and removed, and for rules in both, what changed: name, severity,
//! action, fields read, patterns (atoms) and the condition. `pipectl diff`
//! prints this with or without recorded events.

use crate::show;
use channel_parser::{ChannelFile, RuleView};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;

#[derive(Debug, Clone, PartialEq)]
struct Snapshot {
    id: u32,
    name: String,
    severity: String,
    action: String,
    fields: Vec<String>,
    atoms: Vec<String>,
    condition: String,
    /// The condition over the rule's own atom ordinals (`#0 or #1`): equal
    /// shapes with other patterns are shown as a pattern change only.
    shape: String,
}

impl Snapshot {
    fn of(r: &RuleView<'_>) -> Snapshot {
        Snapshot {
            id: r.id(),
            name: r.name().to_string(),
            severity: r.severity().to_string(),
            action: r.action().to_string(),
            fields: r.fields().map(|f| f.to_string()).collect(),
            atoms: r.atoms().map(|a| show::atom(&a)).collect(),
            condition: show::condition(r),
            shape: {
                let first = r.atoms().map(|a| a.index()).min().unwrap_or(0);
                show::condition_with(r.program(), |i| format!("#{}", i.wrapping_sub(first)))
            },
        }
    }

    fn head(&self) -> String {
        format!(
            "{} {} {} {}",
            show::rule_id(self.id),
            show::quote(&self.name),
            self.severity,
            self.action
        )
    }

    fn json(&self) -> Value {
        json!({
            "id": self.id,
            "id_hex": show::rule_id_hex(self.id),
            "name": self.name,
            "severity": self.severity,
            "action": self.action,
            "fields": self.fields,
            "patterns": self.atoms,
            "condition": self.condition,
        })
    }
}

/// Items of `a` not in `b`, as multisets (order of `a`).
fn minus(a: &[String], b: &[String]) -> Vec<String> {
    let mut left: BTreeMap<&str, usize> = BTreeMap::new();
    for x in b {
        *left.entry(x).or_default() += 1;
    }
    a.iter()
        .filter(|x| match left.get_mut(x.as_str()) {
            Some(n) if *n > 0 => {
                *n -= 1;
                false
            }
            _ => true,
        })
        .cloned()
        .collect()
}

/// One changed property of a rule.
#[derive(Debug)]
struct Change {
    what: &'static str,
    old: Value,
    new: Value,
    text: Vec<String>,
}

fn changes(a: &Snapshot, b: &Snapshot) -> Vec<Change> {
    let mut out = Vec::new();
    let mut simple = |what: &'static str, x: &str, y: &str| {
        if x != y {
            out.push(Change {
                what,
                old: json!(x),
                new: json!(y),
                text: vec![format!("{what}: {x} -> {y}")],
            });
        }
    };
    simple("name", &show::quote(&a.name), &show::quote(&b.name));
    simple("severity", &a.severity, &b.severity);
    simple("action", &a.action, &b.action);
    if a.fields != b.fields {
        out.push(Change {
            what: "fields",
            old: json!(a.fields),
            new: json!(b.fields),
            text: vec![format!(
                "fields: {} -> {}",
                a.fields.join(", "),
                b.fields.join(", ")
            )],
        });
    }
    let (gone, came) = (minus(&a.atoms, &b.atoms), minus(&b.atoms, &a.atoms));
    if !gone.is_empty() || !came.is_empty() {
        let mut text = vec!["patterns:".to_string()];
        text.extend(gone.iter().map(|x| format!("  - {x}")));
        text.extend(came.iter().map(|x| format!("  + {x}")));
        out.push(Change {
            what: "patterns",
            old: json!(gone),
            new: json!(came),
            text,
        });
    }
    let patterns_changed = !gone.is_empty() || !came.is_empty();
    if a.shape != b.shape || (!patterns_changed && a.condition != b.condition) {
        out.push(Change {
            what: "condition",
            old: json!(a.condition),
            new: json!(b.condition),
            text: vec![
                format!("condition: {}", a.condition),
                format!("       now: {}", b.condition),
            ],
        });
    }
    out
}

/// The rule-level difference, as text and JSON.
#[derive(Debug)]
pub struct RulesDiff {
    /// Text lines (starting with `rules     N added, ...`).
    pub text: String,
    /// `{"added": [...], "removed": [...], "changed": [{id, changes: [...]}]}`.
    pub json: Value,
}

/// Compares `old` and `new` rule by rule (by id).
pub fn diff(old: &ChannelFile<'_>, new: &ChannelFile<'_>) -> RulesDiff {
    let o: BTreeMap<u32, Snapshot> = old.rules().map(|r| (r.id(), Snapshot::of(&r))).collect();
    let n: BTreeMap<u32, Snapshot> = new.rules().map(|r| (r.id(), Snapshot::of(&r))).collect();
    let added: Vec<&Snapshot> = n.values().filter(|r| !o.contains_key(&r.id)).collect();
    let removed: Vec<&Snapshot> = o.values().filter(|r| !n.contains_key(&r.id)).collect();
    let changed: Vec<(&Snapshot, &Snapshot, Vec<Change>)> = o
        .values()
        .filter_map(|r| n.get(&r.id).map(|x| (r, x, changes(r, x))))
        .filter(|(_, _, c)| !c.is_empty())
        .collect();
    let mut text = format!(
        "rules     {} added, {} removed, {} changed (by rule id)\n",
        added.len(),
        removed.len(),
        changed.len()
    );
    for r in &added {
        let _ = writeln!(text, "  + {}", r.head());
        let _ = writeln!(text, "      condition: {}", r.condition);
    }
    for r in &removed {
        let _ = writeln!(text, "  - {}", r.head());
    }
    for (_, b, cs) in &changed {
        let _ = writeln!(text, "  ~ {}", b.head());
        for c in cs {
            for l in &c.text {
                let _ = writeln!(text, "      {l}");
            }
        }
    }
    let json = json!({
        "added": added.iter().map(|r| r.json()).collect::<Vec<_>>(),
        "removed": removed.iter().map(|r| r.json()).collect::<Vec<_>>(),
        "changed": changed.iter().map(|(a, b, cs)| json!({
            "id": a.id,
            "id_hex": show::rule_id_hex(a.id),
            "old": a.json(),
            "new": b.json(),
            "changes": cs.iter().map(|c| json!({"what": c.what, "old": c.old, "new": c.new})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    });
    RulesDiff { text, json }
}
