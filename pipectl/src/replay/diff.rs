//! `pipectl diff`: which verdicts a candidate release changes against the
//! release in the field, on the same recorded events (ingest and evaluate as
//! `pipectl replay`), and which rules it adds, removes or changes.

use super::evaluate::{evaluate, Channel, Outcome, RuleInfo, Work};
use super::ingest::{load_events, Record};
use super::{print, CommonArgs};
use channel_parser::ChannelFile;
use serde_json::json;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

/// Arguments of `pipectl diff`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:
  pipectl diff C-00000291-00000041.sys C-00000291-00000042.sys
  pipectl diff C-00000291-00000041.sys C-00000291-00000042.sys --events logs/ --fail-on-new-block
Exit codes: 0 compared (by default even when verdicts change), 1 a --fail-on-* condition
held (or a channel file is invalid), 2 unreadable or malformed event input.")]
pub struct DiffArgs {
    /// The release in the field.
    old: PathBuf,
    /// The candidate release.
    new: PathBuf,
    /// Event files (.evtx, JSON, JSON lines) or directories of them. Without
    /// them only the rule-level changes are shown.
    #[arg(long, num_args = 1..)]
    events: Vec<PathBuf>,
    #[command(flatten)]
    common: CommonArgs,
    /// Exit 1 when any event's verdict changes.
    #[arg(long, requires = "events")]
    fail_on_change: bool,
    /// Exit 1 when any event would be blocked by the new release but not by the
    /// old one (newly matched by a block rule, or alert→block), or when the new
    /// release adds a block rule that can match a protected pipe or critical
    /// process (which the sensor never denies).
    #[arg(long, requires = "events")]
    fail_on_new_block: bool,
}

/// How an event's verdict changes between two releases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Change {
    /// No rule matched in old, some rule matches in new.
    NewlyMatched,
    /// Some rule matched in old, none in new.
    NoLongerMatched,
    /// Both match, the resulting action differs (alert→block, block→alert).
    ActionChanged,
    /// Both match with the same action, but the best rule differs.
    BestRuleChanged,
    /// Same best rule and action, but the set of matching rules differs.
    OtherMatchesChanged,
}

impl Change {
    fn key(self) -> &'static str {
        match self {
            Change::NewlyMatched => "newly_matched",
            Change::NoLongerMatched => "no_longer_matched",
            Change::ActionChanged => "action_changed",
            Change::BestRuleChanged => "best_rule_changed",
            Change::OtherMatchesChanged => "other_matches_changed",
        }
    }
    fn title(self) -> &'static str {
        match self {
            Change::NewlyMatched => "NEWLY MATCHED",
            Change::NoLongerMatched => "NO LONGER MATCHED",
            Change::ActionChanged => "ACTION CHANGED",
            Change::BestRuleChanged => "BEST RULE CHANGED",
            Change::OtherMatchesChanged => "OTHER MATCHES CHANGED",
        }
    }
    const ALL: [Change; 5] = [
        Change::NewlyMatched,
        Change::NoLongerMatched,
        Change::ActionChanged,
        Change::BestRuleChanged,
        Change::OtherMatchesChanged,
    ];
}

fn classify(old: &Outcome, new: &Outcome) -> Option<Change> {
    match (&old.best, &new.best) {
        (None, None) => None,
        (None, Some(_)) => Some(Change::NewlyMatched),
        (Some(_), None) => Some(Change::NoLongerMatched),
        (Some(o), Some(n)) if o.action != n.action => Some(Change::ActionChanged),
        (Some(o), Some(n)) if o.id != n.id => Some(Change::BestRuleChanged),
        _ if old.matched != new.matched => Some(Change::OtherMatchesChanged),
        _ => None,
    }
}

struct Group {
    change: Change,
    old: Option<RuleInfo>,
    new: Option<RuleInfo>,
    count: usize,
    examples: Vec<Record>,
}

/// Runs `pipectl diff`.
pub fn run_diff(a: DiffArgs) -> Result<u8, String> {
    let (co, cn) = (Channel::open(&a.old)?, Channel::open(&a.new)?);
    let (fo, fnew) = match (co.parse(), cn.parse()) {
        (Ok(o), Ok(n)) => (o, n),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("{e}");
            return Ok(1);
        }
    };
    let rules_diff = crate::rulediff::diff(&fo, &fnew);
    if a.events.is_empty() {
        return Ok(print_rules_only(&a, (&co, &fo), (&cn, &fnew), &rules_diff));
    }
    let loaded = load_events(&a.events, a.common.skip_bad)?;
    let mut work = Work::new();
    let mut groups: Vec<Group> = Vec::new();
    let mut counts: BTreeMap<Change, usize> = BTreeMap::new();
    let (mut alert_to_block, mut block_to_alert, mut new_blocks) = (0usize, 0usize, 0usize);
    for r in &loaded.records {
        // An event the sensor does not evaluate (no name it can match) has
        // no verdict in either release.
        let (Ok(o), Ok(n)) = (evaluate(&fo, r, &mut work), evaluate(&fnew, r, &mut work)) else {
            continue;
        };
        let (o, n) = (o.outcome, n.outcome);
        let Some(c) = classify(&o, &n) else { continue };
        *counts.entry(c).or_default() += 1;
        let old_block = o.best.as_ref().is_some_and(|b| b.action == "block");
        let new_block = n.best.as_ref().is_some_and(|b| b.action == "block");
        if new_block && !old_block {
            new_blocks += 1;
        }
        if c == Change::ActionChanged {
            if new_block {
                alert_to_block += 1;
            } else {
                block_to_alert += 1;
            }
        }
        let g = match groups
            .iter_mut()
            .find(|g| g.change == c && g.old == o.best && g.new == n.best)
        {
            Some(g) => g,
            None => {
                groups.push(Group {
                    change: c,
                    old: o.best.clone(),
                    new: n.best.clone(),
                    count: 0,
                    examples: Vec::new(),
                });
                groups.last_mut().expect("just pushed")
            }
        };
        g.count += 1;
        if g.examples.len() < a.common.examples {
            g.examples.push(r.clone());
        }
    }
    groups.sort_by(|x, y| {
        (x.change, std::cmp::Reverse(x.count)).cmp(&(y.change, std::cmp::Reverse(y.count)))
    });
    let changed: usize = counts.values().sum();
    let protected_new = crate::protected::findings(&fnew);
    let protected_added =
        crate::protected::new_in(&crate::protected::findings(&fo), &protected_new);
    if a.common.json {
        let v = json!({
            "old": co.json(&fo),
            "new": cn.json(&fnew),
            "events": loaded.json(),
            "summary": {
                "pipe_events": loaded.records.len(),
                "changed": changed,
                "unchanged": loaded.records.len() - changed,
                "newly_matched": counts.get(&Change::NewlyMatched).copied().unwrap_or(0),
                "no_longer_matched": counts.get(&Change::NoLongerMatched).copied().unwrap_or(0),
                "action_changed": counts.get(&Change::ActionChanged).copied().unwrap_or(0),
                "alert_to_block": alert_to_block,
                "block_to_alert": block_to_alert,
                "best_rule_changed": counts.get(&Change::BestRuleChanged).copied().unwrap_or(0),
                "other_matches_changed": counts.get(&Change::OtherMatchesChanged).copied().unwrap_or(0),
                "new_blocks": new_blocks,
            },
            "rules": rules_diff.json,
            "protected_block_rules": protected_new.iter().map(crate::protected::finding_json).collect::<Vec<_>>(),
            "protected_block_rules_added": protected_added.iter().map(|x| x.rule_id).collect::<Vec<_>>(),
            "groups": groups.iter().map(|g| json!({
                "change": g.change.key(),
                "old": g.old.as_ref().map(RuleInfo::json),
                "new": g.new.as_ref().map(RuleInfo::json),
                "events": g.count,
                "examples": g.examples.iter().map(Record::to_json).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        });
        print(&(serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"));
    } else {
        let mut s = releases_text((&co, &fo), (&cn, &fnew));
        s.push_str(&loaded.text());
        s.push_str(&rules_diff.text);
        s.push_str(&crate::protected::text(&protected_added, "new: "));
        let _ = writeln!(
            s,
            "verdicts  {changed} of {} pipe events change:",
            loaded.records.len()
        );
        for c in Change::ALL {
            let n = counts.get(&c).copied().unwrap_or(0);
            let extra = if c == Change::ActionChanged {
                format!(" (alert→block {alert_to_block}, block→alert {block_to_alert})")
            } else {
                String::new()
            };
            let _ = writeln!(s, "  {:<22} {n}{extra}", c.key().replace('_', " "));
        }
        let _ = writeln!(s, "  {:<22} {new_blocks}", "newly blocked (any)");
        for g in &groups {
            let desc = |r: &Option<RuleInfo>| match r {
                Some(r) => format!(
                    "rule {} {} ({}, {})",
                    crate::show::rule_id(r.id),
                    crate::show::quote(&r.name),
                    r.severity,
                    r.action
                ),
                None => "no match".to_string(),
            };
            let _ = writeln!(
                s,
                "\n{}: {} event(s)\n  old: {}\n  new: {}",
                g.change.title(),
                g.count,
                desc(&g.old),
                desc(&g.new)
            );
            for e in &g.examples {
                let _ = writeln!(s, "    e.g. {}", e.to_text());
            }
        }
        if changed == 0 {
            let _ = writeln!(s, "\nno verdict changes on these events");
        }
        print(&s);
    }
    let fail = (a.fail_on_change && changed > 0)
        || (a.fail_on_new_block && (new_blocks > 0 || !protected_added.is_empty()));
    Ok(u8::from(fail))
}

/// `pipectl diff` without `--events`: the rule-level changes only.
/// The `old`/`new` lines both text reports start with.
fn releases_text(
    (co, fo): (&Channel, &ChannelFile<'_>),
    (cn, fnew): (&Channel, &ChannelFile<'_>),
) -> String {
    let mut s = String::new();
    for (label, c, f) in [("old", co, fo), ("new", cn, fnew)] {
        let _ = writeln!(
            s,
            "{label:<9} {} (sequence {}, {} rules)",
            c.path,
            f.sequence(),
            f.rule_count()
        );
    }
    s
}

fn print_rules_only(
    a: &DiffArgs,
    (co, fo): (&Channel, &ChannelFile<'_>),
    (cn, fnew): (&Channel, &ChannelFile<'_>),
    rules_diff: &crate::rulediff::RulesDiff,
) -> u8 {
    if a.common.json {
        let v = json!({
            "old": co.json(fo),
            "new": cn.json(fnew),
            "rules": rules_diff.json,
        });
        print(&(serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"));
    } else {
        let mut s = releases_text((co, fo), (cn, fnew));
        s.push_str(&rules_diff.text);
        let _ = writeln!(
            s,
            "verdicts  not computed: give --events FILES to see which recorded events change"
        );
        print(&s);
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let r = |id: u32, action: &str| RuleInfo {
            id,
            name: String::new(),
            severity: "high".into(),
            action: action.into(),
        };
        let none = Outcome {
            matched: vec![],
            best: None,
        };
        let a1 = Outcome {
            matched: vec![1],
            best: Some(r(1, "alert")),
        };
        let b1 = Outcome {
            matched: vec![1],
            best: Some(r(1, "block")),
        };
        let a2 = Outcome {
            matched: vec![1, 2],
            best: Some(r(2, "alert")),
        };
        let a1b = Outcome {
            matched: vec![1, 3],
            best: Some(r(1, "alert")),
        };
        assert_eq!(classify(&none, &none), None);
        assert_eq!(classify(&a1, &a1), None);
        assert_eq!(classify(&none, &a1), Some(Change::NewlyMatched));
        assert_eq!(classify(&a1, &none), Some(Change::NoLongerMatched));
        assert_eq!(classify(&a1, &b1), Some(Change::ActionChanged));
        assert_eq!(classify(&a1, &a2), Some(Change::BestRuleChanged));
        assert_eq!(classify(&a1, &a1b), Some(Change::OtherMatchesChanged));
    }
}
