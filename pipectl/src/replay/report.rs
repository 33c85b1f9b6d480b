//! Step 3 of a backtest: the replay report, per rule, as text or JSON.

use super::evaluate::{Channel, Evaluation, NotEvaluated, RuleInfo};
use super::ingest::Loaded;
use channel_parser::ChannelFile;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// How the report is written.
#[derive(Debug, Clone, Copy)]
pub struct ReportOptions {
    /// Example events per rule.
    pub examples: usize,
    /// One JSON document instead of text.
    pub json: bool,
    /// List the rules that matched nothing too (text).
    pub all: bool,
}

#[derive(Default)]
struct RuleTally {
    events: usize,
    best: usize,
    examples: Vec<Value>,
    example_text: Vec<String>,
}

/// The verdict counts over all pipe events.
#[derive(Default)]
struct Verdicts {
    matched: usize,
    alert: usize,
    block: usize,
    no_match: usize,
    not_evaluated: BTreeMap<NotEvaluated, usize>,
}

impl Verdicts {
    fn not_evaluated_total(&self) -> usize {
        self.not_evaluated.values().sum()
    }
}

/// The report of `pipectl replay`: `results[i]` is the evaluation of
/// `loaded.records[i]`.
pub fn replay(
    ch: &Channel,
    f: &ChannelFile<'_>,
    loaded: &Loaded,
    results: &[Result<Evaluation, NotEvaluated>],
    opts: ReportOptions,
) -> String {
    let mut tallies: Vec<RuleTally> = (0..f.rule_count()).map(|_| RuleTally::default()).collect();
    let mut v = Verdicts::default();
    for (r, res) in loaded.records.iter().zip(results) {
        let e = match res {
            Ok(e) => e,
            Err(why) => {
                *v.not_evaluated.entry(*why).or_default() += 1;
                continue;
            }
        };
        match &e.outcome.best {
            Some(b) => {
                v.matched += 1;
                if b.blocks() {
                    v.block += 1;
                } else {
                    v.alert += 1;
                }
            }
            None => v.no_match += 1,
        }
        for &i in &e.indexes {
            let Some(t) = tallies.get_mut(i as usize) else {
                continue;
            };
            t.events += 1;
            if e.best_index == Some(i) {
                t.best += 1;
            }
            if t.examples.len() < opts.examples {
                t.examples.push(r.to_json());
                t.example_text.push(r.to_text());
            }
        }
    }
    let rules: Vec<(RuleInfo, &RuleTally)> = f
        .rules()
        .map(|r| RuleInfo::of(&r))
        .zip(tallies.iter())
        .collect();
    let mut order: Vec<usize> = (0..rules.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(rules[i].1.events), i));
    let protected = crate::protected::findings(f);
    if opts.json {
        let j = json!({
            "channel": ch.json(f),
            "events": loaded.json(),
            "verdicts": {
                "matched": v.matched, "alert": v.alert, "block": v.block, "no_match": v.no_match,
                "not_evaluated": v.not_evaluated_total(),
                "not_evaluated_by_reason": v.not_evaluated.iter().map(|(k, n)| (k.key().to_string(), json!(n))).collect::<Map<_, _>>(),
            },
            "rules": order.iter().map(|&i| {
                let (info, t) = &rules[i];
                let mut x = info.json();
                x["events"] = json!(t.events);
                x["as_best"] = json!(t.best);
                x["would"] = json!(if t.events == 0 { "nothing" } else if info.blocks() { "block" } else { "alert" });
                x["examples"] = json!(t.examples);
                x
            }).collect::<Vec<_>>(),
            "protected_block_rules": protected.iter().map(crate::protected::finding_json).collect::<Vec<_>>(),
        });
        return serde_json::to_string_pretty(&j).unwrap_or_default() + "\n";
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "channel   {} (sequence {}, {} rules)",
        ch.path,
        f.sequence(),
        f.rule_count()
    );
    s.push_str(&loaded.text());
    let _ = writeln!(
        s,
        "verdicts  {} of {} pipe events matched: {} alert, {} block (in enforce mode); {} no match",
        v.matched,
        loaded.records.len(),
        v.alert,
        v.block,
        v.no_match
    );
    if !v.not_evaluated.is_empty() {
        let why: Vec<String> = v
            .not_evaluated
            .iter()
            .map(|(k, n)| format!("{}: {n}", k.key().replace('_', " ")))
            .collect();
        let _ = writeln!(
            s,
            "          {} not evaluated ({}): the sensor sees no name it can match, counts a name error and lets them through",
            v.not_evaluated_total(),
            why.join(", ")
        );
    }
    let _ = writeln!(
        s,
        "\n{:>10}  {:<5}  {:<13} {:>7} {:>7}  name",
        "rule", "would", "severity", "events", "as-best"
    );
    let mut silent = Vec::new();
    for &i in &order {
        let (info, t) = &rules[i];
        if t.events == 0 {
            silent.push(info.id.to_string());
            if !opts.all {
                continue;
            }
        }
        let _ = writeln!(
            s,
            "{:>10}  {:<5}  {:<13} {:>7} {:>7}  {}",
            info.id, info.action, info.severity, t.events, t.best, info.name
        );
        for e in &t.example_text {
            let _ = writeln!(s, "{:>12}e.g. {e}", "");
        }
    }
    if !silent.is_empty() && !opts.all {
        let _ = writeln!(
            s,
            "({} rule(s) matched no event: {}; --all lists them)",
            silent.len(),
            silent.join(", ")
        );
    }
    s.push_str(&crate::protected::text(&protected, ""));
    s
}
