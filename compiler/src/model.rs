//! The rule model every rule source (native YAML, Sigma, Sysmon) is imported
//! into, and that the compiler turns into a channel file.

use std::fmt;
use std::path::PathBuf;

pub use channel_format::{Action, EventKind, FieldId, Severity};

/// Where a rule or a construct came from: file, 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourceLoc {
    /// The source file.
    pub file: PathBuf,
    /// 1-based line (0 when unknown).
    pub line: usize,
    /// 1-based column (0 when unknown).
    pub col: usize,
}

impl fmt::Display for SourceLoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
    }
}

/// A set of rules.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleSet {
    /// The rules, in file order.
    pub rules: Vec<Rule>,
}

/// One rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Unique id in the channel file.
    pub id: u32,
    /// Human-readable name (Sigma: title).
    pub name: String,
    /// Severity.
    pub severity: Severity,
    /// Alert or block.
    pub action: Action,
    /// When the rule matches.
    pub condition: Cond,
    /// Where the rule was defined.
    pub source: SourceLoc,
    /// Embedded test cases (native rules; empty for imported ones).
    pub tests: Vec<TestCase>,
}

/// A boolean condition over atoms.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    /// One test on one field.
    Atom(Atom),
    /// All must hold (an empty `And` is true).
    And(Vec<Cond>),
    /// Any must hold (an empty `Or` is false).
    Or(Vec<Cond>),
    /// Negation.
    Not(Box<Cond>),
    /// A constant.
    Const(bool),
}

/// One test on one field.
#[derive(Debug, Clone, PartialEq)]
pub struct Atom {
    /// The field tested.
    pub field: FieldId,
    /// How it is tested.
    pub matcher: Matcher,
}

/// A token of a wildcard pattern (Sigma / Sysmon semantics, escapes resolved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GlobTok {
    /// Literal text (matched case-insensitively).
    Lit(String),
    /// `*`: any run of characters, possibly empty.
    Star,
    /// `?`: exactly one character.
    One,
}

/// How an atom tests a field. All string tests are case-insensitive except
/// `Regex` without `case_insensitive` (Sigma `re` semantics).
#[derive(Debug, Clone, PartialEq)]
pub enum Matcher {
    /// Field equals the text.
    Exact(String),
    /// Field starts with the text.
    Prefix(String),
    /// Field ends with the text.
    Suffix(String),
    /// Field contains the text.
    Contains(String),
    /// Whole field matches the wildcard pattern. The compiler turns globs
    /// that are plain literals, `lit*`, `*lit` or `*lit*` into the literal kinds.
    Glob(Vec<GlobTok>),
    /// Regular expression (regex crate syntax), unanchored unless it anchors itself.
    Regex {
        /// The pattern.
        pattern: String,
        /// `(?i)` semantics.
        case_insensitive: bool,
    },
    /// Integer field equals the value (ProcessId, EventKind: 1 create, 2 connect).
    NumEq(u32),
}

/// An embedded test case of a native rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestCase {
    /// Pipe name, as Sysmon reports it (`\name`).
    pub pipe_name: String,
    /// Image path, if the case sets one.
    pub image: Option<String>,
    /// Event kind; create when absent.
    pub kind: Option<EventKind>,
    /// Process id; `sensor_core::eval::DEFAULT_PID` when absent.
    pub pid: Option<u32>,
    /// The requester's user SID string (`S-1-5-18`), if the case sets one;
    /// without it rules on `User` do not match (no user known).
    pub user: Option<String>,
    /// Whether the rule must match.
    pub expect_match: bool,
    /// Where the case is written.
    pub source: SourceLoc,
}

/// An error in a rule source: where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceError {
    /// Where (file:line:column).
    pub loc: SourceLoc,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.loc, self.message)
    }
}

impl std::error::Error for SourceError {}

impl SourceError {
    /// A new error at `loc`.
    pub fn new(loc: SourceLoc, message: impl Into<String>) -> Self {
        SourceError {
            loc,
            message: message.into(),
        }
    }
}
