//! Short constructors of the rule model for tests that build rule sets in
//! code.

use pipe_compiler::model::{Action, Atom, Cond, FieldId, Matcher, Rule, Severity, SourceLoc};

/// A medium-severity alert rule named `r<id>` with `condition` and no
/// embedded test cases.
pub fn rule(id: u32, condition: Cond) -> Rule {
    Rule {
        id,
        name: format!("r{id}"),
        severity: Severity::MEDIUM,
        action: Action::ALERT,
        condition,
        source: SourceLoc::default(),
        tests: vec![],
    }
}

/// The condition "`matcher` holds on `field`".
pub fn on(field: FieldId, matcher: Matcher) -> Cond {
    Cond::Atom(Atom { field, matcher })
}
