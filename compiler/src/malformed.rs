//! The malformed corpus: channel files built by code from a valid one, each
//! with the [`channel_parser::ParseError`] kind it must be rejected with.
//!
//! Used by the parser's tests (every case rejected with the expected variant),
//! by `pipectl gen-malformed` (files for the driver's Wine tests) and as fuzz
//! seeds.

use crate::compile::assemble;
use crate::model::{Atom, Cond, FieldId, GlobTok, Matcher, Rule, RuleSet, SourceLoc};
use crate::{AlignedBytes, CompileOptions};
use channel_format::{self as fmt, Action, SectionKind, Severity};
use channel_parser::Capabilities;

/// What the parser must do with a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Reject with this `ParseError::kind()`.
    Kind(&'static str),
    /// Reject with one of these kinds.
    OneOf(&'static [&'static str]),
    /// Accept (changes the format allows: minor version, sequence, optional
    /// flags, unknown optional sections).
    Valid,
}

/// One file of the corpus.
#[derive(Debug, Clone)]
pub struct Case {
    /// File-name-safe description.
    pub name: String,
    /// The bytes.
    pub bytes: Vec<u8>,
    /// The expected outcome.
    pub expect: Expect,
    /// The sensor capabilities to parse with.
    pub caps: Capabilities,
    /// Parse with every limit at its maximum (to reach overflow checks).
    pub max_limits: bool,
    /// Parse from an address that is not 4-byte aligned.
    pub misaligned: bool,
}

impl Case {
    /// Runs the kernel's parser on the case. `Ok(())` when the outcome is the
    /// expected one, else a description of what happened.
    pub fn check(&self) -> Result<(), String> {
        let limits = if self.max_limits {
            fmt::Limits {
                max_file_len: u32::MAX,
                max_sections: u32::MAX,
                max_rules: u32::MAX,
                max_atoms: u32::MAX,
                max_dfas: u32::MAX,
                max_dfa_len: u32::MAX,
                max_states: u32::MAX,
                ..fmt::Limits::DEFAULT
            }
        } else {
            fmt::Limits::DEFAULT
        };
        // AlignedBytes is 8-aligned: one leading byte makes the view misaligned.
        let aligned = if self.misaligned {
            AlignedBytes::new(&[&[0u8][..], &self.bytes].concat())
        } else {
            AlignedBytes::new(&self.bytes)
        };
        let slice = if self.misaligned {
            &aligned.as_slice()[1..]
        } else {
            aligned.as_slice()
        };
        let got = channel_parser::parse_with_limits(slice, &self.caps, &limits);
        match (self.expect, got) {
            (Expect::Valid, Ok(_)) => Ok(()),
            (Expect::Kind(k), Err(e)) if e.kind() == k => Ok(()),
            (Expect::OneOf(ks), Err(e)) if ks.contains(&e.kind()) => Ok(()),
            (exp, Ok(_)) => Err(format!(
                "{}: expected {exp:?}, but the file was accepted",
                self.name
            )),
            (exp, Err(e)) => Err(format!(
                "{}: expected {exp:?}, got {} ({e})",
                self.name,
                e.kind()
            )),
        }
    }
}

fn loc() -> SourceLoc {
    SourceLoc {
        file: "fixture".into(),
        line: 0,
        col: 0,
    }
}

fn atom(field: FieldId, matcher: Matcher) -> Cond {
    Cond::Atom(Atom { field, matcher })
}

/// The rule set the corpus is derived from: every atom kind, both string
/// fields, numeric fields, a regex (so a DFA), and an always-evaluated rule.
pub fn fixture_rules() -> RuleSet {
    let rule = |id: u32, name: &str, condition: Cond| Rule {
        id,
        name: name.to_string(),
        severity: Severity::HIGH,
        action: if id.is_multiple_of(2) {
            Action::BLOCK
        } else {
            Action::ALERT
        },
        condition,
        source: loc(),
        tests: Vec::new(),
    };
    RuleSet {
        rules: vec![
            rule(
                10,
                "cobalt postex",
                atom(FieldId::PIPE_NAME, Matcher::Prefix("\\postex_".into())),
            ),
            rule(
                20,
                "psexec outside system32",
                Cond::And(vec![
                    atom(
                        FieldId::PIPE_NAME,
                        Matcher::Glob(vec![GlobTok::Lit("\\PSEXESVC".into()), GlobTok::Star]),
                    ),
                    Cond::Not(Box::new(atom(
                        FieldId::IMAGE,
                        Matcher::Suffix("\\system32\\psexesvc.exe".into()),
                    ))),
                ]),
            ),
            rule(
                30,
                "mojo regex",
                atom(
                    FieldId::PIPE_NAME,
                    Matcher::Regex {
                        pattern: r"\\mojo\.5688\.8052\.[0-9a-f]{2}".into(),
                        case_insensitive: false,
                    },
                ),
            ),
            rule(
                40,
                "wildcard",
                atom(
                    FieldId::PIPE_NAME,
                    Matcher::Glob(vec![
                        GlobTok::Lit("\\msagent_".into()),
                        GlobTok::One,
                        GlobTok::One,
                        GlobTok::Star,
                        GlobTok::Lit("x".into()),
                    ]),
                ),
            ),
            rule(
                50,
                "not a known pipe, on connect",
                Cond::And(vec![
                    atom(FieldId::EVENT_KIND, Matcher::NumEq(2)),
                    Cond::Not(Box::new(atom(
                        FieldId::PIPE_NAME,
                        Matcher::Contains("lsass".into()),
                    ))),
                ]),
            ),
            rule(
                60,
                "exact",
                Cond::Or(vec![
                    atom(FieldId::PIPE_NAME, Matcher::Exact("\\lsadump".into())),
                    atom(FieldId::PROCESS_ID, Matcher::NumEq(4242)),
                ]),
            ),
        ],
    }
}

/// The valid file the corpus mutates. Written with the low-level writer:
/// its block rules are test data (one matches any connect that is not to a
/// pipe containing `lsass`), not content for machines, and the corpus must
/// stay byte-identical.
pub fn fixture_file() -> Vec<u8> {
    match crate::compile_unchecked(
        &fixture_rules(),
        &CompileOptions {
            sequence: 7,
            ..CompileOptions::default()
        },
    ) {
        Ok(b) => b,
        Err(e) => panic!("fixture must compile: {e}"),
    }
}

/// A valid file taken apart into its sections, to rebuild with changes.
#[derive(Debug, Clone)]
struct Parts {
    sequence: u64,
    sections: Vec<(SectionKind, u32, Vec<u8>)>,
}

impl Parts {
    fn of(bytes: &[u8]) -> Parts {
        let aligned = AlignedBytes::new(bytes);
        let file = match channel_parser::parse(aligned.as_slice(), &Capabilities::SENSOR_V1) {
            Ok(f) => f,
            Err(e) => panic!("base file must be valid: {e}"),
        };
        let sections = file
            .sections()
            .map(|s| {
                (
                    s.kind,
                    s.flags,
                    bytes[s.offset as usize..(s.offset + s.len) as usize].to_vec(),
                )
            })
            .collect();
        Parts {
            sequence: file.sequence(),
            sections,
        }
    }
    fn body(&mut self, kind: SectionKind) -> &mut Vec<u8> {
        match self.sections.iter_mut().find(|s| s.0 == kind) {
            Some(s) => &mut s.2,
            None => panic!("no section {kind}"),
        }
    }
    fn build(&self) -> Vec<u8> {
        assemble(self.sequence, 0, &self.sections)
    }
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The whole corpus. `every_offset` adds a truncation at every byte offset
/// (hundreds of files); without it truncations are taken at section
/// boundaries and a sample of offsets.
pub fn corpus(every_offset: bool) -> Vec<Case> {
    let base = fixture_file();
    let parts = Parts::of(&base);
    let mut out = Vec::new();
    let caps = Capabilities::SENSOR_V1;
    let mut add = |name: String, bytes: Vec<u8>, expect: Expect| {
        out.push(Case {
            name,
            bytes,
            expect,
            caps,
            max_limits: false,
            misaligned: false,
        });
    };
    let header = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = base.clone();
        f(&mut b);
        b
    };
    use fmt::header as h;

    // Truncation.
    let boundaries: Vec<usize> = parts_boundaries(&base);
    for n in 0..base.len() {
        if every_offset || boundaries.contains(&n) || n % 97 == 0 || n < 72 && n % 8 == 0 {
            let expect = if n < 64 {
                Expect::Kind("truncated")
            } else {
                Expect::Kind("length-mismatch")
            };
            add(format!("truncate-{n:05}"), base[..n].to_vec(), expect);
            if n >= 64 {
                let mut b = base[..n].to_vec();
                put_u32(&mut b, h::TOTAL_LEN, n as u32);
                add(
                    format!("truncate-patched-{n:05}"),
                    b,
                    Expect::OneOf(&[
                        "section-out-of-bounds",
                        "truncated",
                        "non-zero-reserved",
                        "missing-section",
                    ]),
                );
            }
        }
    }
    // Header fields.
    for i in 0..8 {
        add(
            format!("header-magic-byte-{i}"),
            header(&|b| b[i] ^= 0x20),
            Expect::Kind("bad-magic"),
        );
    }
    add(
        "header-endian-swapped".into(),
        header(&|b| put_u16(b, h::ENDIAN, 0xFFFE)),
        Expect::Kind("bad-endianness"),
    );
    add(
        "header-len-65".into(),
        header(&|b| put_u16(b, h::HEADER_LEN, 65)),
        Expect::Kind("bad-header-len"),
    );
    add(
        "header-major-0".into(),
        header(&|b| put_u16(b, h::FORMAT_MAJOR, 0)),
        Expect::Kind("unsupported-version"),
    );
    add(
        "header-major-2".into(),
        header(&|b| put_u16(b, h::FORMAT_MAJOR, 2)),
        Expect::Kind("unsupported-version"),
    );
    add(
        "header-minor-7".into(),
        header(&|b| put_u16(b, h::FORMAT_MINOR, 7)),
        Expect::Valid,
    );
    add(
        "header-channel-290".into(),
        header(&|b| put_u32(b, h::CHANNEL, 290)),
        Expect::Kind("wrong-channel"),
    );
    for bit in 0..32 {
        add(
            format!("header-required-flag-{bit:02}"),
            header(&|b| put_u32(b, h::REQUIRED_FLAGS, 1 << bit)),
            Expect::Kind("unknown-required-flags"),
        );
    }
    add(
        "header-sequence-max".into(),
        header(&|b| b[h::SEQUENCE..h::SEQUENCE + 8].copy_from_slice(&u64::MAX.to_le_bytes())),
        Expect::Valid,
    );
    add(
        "header-total-len-minus-8".into(),
        header(&|b| put_u32(b, h::TOTAL_LEN, base.len() as u32 - 8)),
        Expect::Kind("length-mismatch"),
    );
    add(
        "header-total-len-max".into(),
        header(&|b| put_u32(b, h::TOTAL_LEN, u32::MAX)),
        Expect::Kind("length-mismatch"),
    );
    add(
        "header-section-count-0".into(),
        header(&|b| put_u32(b, h::SECTION_COUNT, 0)),
        Expect::Kind("missing-section"),
    );
    add(
        "header-section-count-plus-1".into(),
        header(&|b| put_u32(b, h::SECTION_COUNT, parts.sections.len() as u32 + 1)),
        Expect::OneOf(&[
            "section-out-of-bounds",
            "section-misaligned",
            "bad-section-flags",
            "section-overlap",
            "duplicate-section",
            "unknown-critical-section",
        ]),
    );
    add(
        "header-section-count-huge".into(),
        header(&|b| put_u32(b, h::SECTION_COUNT, u32::MAX)),
        Expect::Kind("limit-exceeded"),
    );
    add(
        "header-optional-flags".into(),
        header(&|b| put_u32(b, h::OPTIONAL_FLAGS, 0xFFFF_FFFF)),
        Expect::Valid,
    );
    for at in (h::RESERVED0..64).step_by(3) {
        add(
            format!("header-reserved-byte-{at}"),
            header(&|b| b[at] = 1),
            Expect::Kind("non-zero-reserved"),
        );
    }

    // Section table.
    let entry = |i: usize| fmt::HEADER_LEN as usize + i * fmt::SECTION_ENTRY_LEN;
    add(
        "section-offset-past-end".into(),
        header(&|b| put_u32(b, entry(2) + 8, base.len() as u32 + 8)),
        Expect::Kind("section-out-of-bounds"),
    );
    add(
        "section-len-huge".into(),
        header(&|b| put_u32(b, entry(2) + 12, u32::MAX - 4)),
        Expect::Kind("section-out-of-bounds"),
    );
    add(
        "section-offset-in-table".into(),
        header(&|b| put_u32(b, entry(1) + 8, 64)),
        Expect::Kind("section-out-of-bounds"),
    );
    add(
        "section-misaligned".into(),
        header(&|b| {
            let o = get_u32(b, entry(3) + 8);
            put_u32(b, entry(3) + 8, o + 4)
        }),
        Expect::OneOf(&["section-misaligned"]),
    );
    add(
        "section-into-other".into(),
        header(&|b| {
            let o = get_u32(b, entry(0) + 8);
            put_u32(b, entry(1) + 8, o)
        }),
        Expect::Kind("section-overlap"),
    );
    add(
        "section-duplicate-kind".into(),
        header(&|b| {
            let k = get_u32(b, entry(0));
            put_u32(b, entry(1), k)
        }),
        Expect::Kind("duplicate-section"),
    );
    let last = parts.sections.len() - 1;
    add(
        "section-unknown-critical".into(),
        header(&|b| {
            put_u32(b, entry(last), 99);
            put_u32(b, entry(last) + 4, 1)
        }),
        Expect::Kind("unknown-critical-section"),
    );
    add(
        "section-bad-flags".into(),
        header(&|b| put_u32(b, entry(0) + 4, 6)),
        Expect::Kind("bad-section-flags"),
    );
    {
        let mut p = parts.clone();
        p.sections.push((SectionKind(99), 0, vec![1, 2, 3]));
        add("section-unknown-optional".into(), p.build(), Expect::Valid);
    }
    for kind in fmt::REQUIRED_SECTIONS {
        let mut p = parts.clone();
        p.sections.retain(|s| s.0 != kind);
        add(
            format!("section-missing-{kind}"),
            p.build(),
            Expect::Kind("missing-section"),
        );
    }
    {
        // Non-zero padding between two sections (the STRINGS section is rarely a multiple of 8).
        let mut p = parts.clone();
        p.body(SectionKind::SCHEMA).truncate(4);
        let b = p.build();
        let mut gap = None;
        let aligned = AlignedBytes::new(&b);
        if let Ok(f) = channel_parser::parse(aligned.as_slice(), &caps) {
            let secs: Vec<_> = f.sections().collect();
            for s in &secs {
                let end = (s.offset + s.len) as usize;
                if !end.is_multiple_of(8) && !secs.iter().any(|t| t.offset as usize == end) {
                    gap = Some(end);
                }
            }
        }
        if let Some(g) = gap {
            let mut b2 = b.clone();
            b2[g] = 0xAA;
            add(
                "padding-nonzero".into(),
                b2,
                Expect::Kind("non-zero-reserved"),
            );
        }
    }
    add(
        "rollout-version-2".into(),
        {
            let mut p = parts.clone();
            put_u32(p.body(SectionKind::ROLLOUT), 0, 2);
            p.build()
        },
        Expect::Kind("invalid-value"),
    );

    // ROLLOUT with a policy.
    {
        let policy = channel_parser::RolloutPolicy {
            staged: Some(channel_parser::Staging {
                ring: channel_format::Ring::EARLY,
                percent_milli: 12_500,
                not_before: 1_800_000_000,
            }),
            rollback_ceiling: Some(45),
        };
        let staged = match crate::compile_unchecked(
            &fixture_rules(),
            &CompileOptions {
                sequence: 7,
                rollout: Some(policy),
                ..CompileOptions::default()
            },
        ) {
            Ok(b) => b,
            Err(e) => panic!("{e}"),
        };
        let sp = Parts::of(&staged);
        let roll = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut p = sp.clone();
            f(p.body(SectionKind::ROLLOUT));
            p.build()
        };
        add("rollout-policy-valid".into(), staged.clone(), Expect::Valid);
        add(
            "rollout-ring-7".into(),
            roll(&|b| b[8] = 7),
            Expect::Kind("invalid-value"),
        );
        add(
            "rollout-percent-over-100".into(),
            roll(&|b| put_u32(b, 12, 100_001)),
            Expect::Kind("invalid-value"),
        );
        add(
            "rollout-unknown-flag".into(),
            roll(&|b| put_u32(b, 4, 7)),
            Expect::Kind("invalid-value"),
        );
        add(
            "rollout-reserved".into(),
            roll(&|b| b[10] = 1),
            Expect::Kind("non-zero-reserved"),
        );
        add(
            "rollout-short".into(),
            roll(&|b| b.truncate(16)),
            Expect::Kind("bad-section-len"),
        );
        add(
            "rollout-ceiling-without-flag".into(),
            roll(&|b| put_u32(b, 4, 1)),
            Expect::Kind("non-zero-reserved"),
        );
        add(
            "rollout-flags-without-body".into(),
            with_rollout_flags(&parts),
            Expect::Kind("bad-section-len"),
        );
    }

    enforcement_cases(&mut add);

    // Schema.
    let with = |f: &dyn Fn(&mut Parts)| {
        let mut p = parts.clone();
        f(&mut p);
        p.build()
    };
    add(
        "schema-len-odd".into(),
        with(&|p| p.body(SectionKind::SCHEMA).push(0)),
        Expect::Kind("bad-section-len"),
    );
    add(
        "schema-duplicate-field".into(),
        with(&|p| {
            let b = p.body(SectionKind::SCHEMA);
            let first = b[..4].to_vec();
            b.extend(first)
        }),
        Expect::Kind("duplicate-field"),
    );
    add(
        "schema-wrong-type".into(),
        with(&|p| p.body(SectionKind::SCHEMA)[2] = 2),
        Expect::Kind("field-type-mismatch"),
    );
    add(
        "schema-reserved".into(),
        with(&|p| p.body(SectionKind::SCHEMA)[3] = 1),
        Expect::Kind("non-zero-reserved"),
    );

    // Rules.
    let r = |i: usize, at: usize| i * fmt::RULE_LEN + at;
    add(
        "rules-len-not-multiple".into(),
        with(&|p| p.body(SectionKind::RULES).push(0)),
        Expect::Kind("bad-section-len"),
    );
    add(
        "rule-duplicate-id".into(),
        with(&|p| {
            let b = p.body(SectionKind::RULES);
            let id = get_u32(b, r(0, 0));
            put_u32(b, r(1, 0), id)
        }),
        Expect::Kind("duplicate-rule-id"),
    );
    add(
        "rule-ids-descending".into(),
        with(&|p| put_u32(p.body(SectionKind::RULES), r(1, 0), 1)),
        Expect::Kind("duplicate-rule-id"),
    );
    add(
        "rule-name-out-of-range".into(),
        with(&|p| put_u32(p.body(SectionKind::RULES), r(0, 4), 1 << 20)),
        Expect::Kind("out-of-range"),
    );
    add(
        "rule-name-len-huge".into(),
        with(&|p| put_u32(p.body(SectionKind::RULES), r(0, 8), u32::MAX)),
        Expect::Kind("limit-exceeded"),
    );
    add(
        "rule-name-invalid-utf8".into(),
        with(&|p| {
            let off = get_u32(p.body(SectionKind::RULES), r(0, 4)) as usize;
            p.body(SectionKind::STRINGS)[off] = 0xFF
        }),
        Expect::Kind("invalid-utf8"),
    );
    add(
        "rule-severity-9".into(),
        with(&|p| p.body(SectionKind::RULES)[r(0, 18)] = 9),
        Expect::Kind("invalid-value"),
    );
    add(
        "rule-action-7".into(),
        with(&|p| p.body(SectionKind::RULES)[r(0, 19)] = 7),
        Expect::Kind("invalid-value"),
    );
    add(
        "rule-unknown-flag".into(),
        with(&|p| p.body(SectionKind::RULES)[r(0, 26)] |= 4),
        Expect::Kind("invalid-value"),
    );
    add(
        "rule-fields-out-of-range".into(),
        with(&|p| put_u32(p.body(SectionKind::RULES), r(0, 12), 1000)),
        Expect::Kind("out-of-range"),
    );
    add(
        "rule-fields-count-huge".into(),
        with(&|p| put_u16(p.body(SectionKind::RULES), r(0, 16), 60000)),
        Expect::Kind("limit-exceeded"),
    );
    add(
        "rule-atoms-start-wrong".into(),
        with(&|p| {
            let b = p.body(SectionKind::RULES);
            let s = get_u32(b, r(1, 28));
            put_u32(b, r(1, 28), s + 1)
        }),
        Expect::Kind("out-of-range"),
    );
    add(
        "rule-atoms-start-past-end".into(),
        with(&|p| put_u32(p.body(SectionKind::RULES), r(5, 28), 10_000)),
        Expect::Kind("out-of-range"),
    );
    add(
        "rule-program-out-of-range".into(),
        with(&|p| put_u32(p.body(SectionKind::RULES), r(0, 20), 1 << 20)),
        Expect::Kind("out-of-range"),
    );
    add(
        "rule-program-empty".into(),
        with(&|p| put_u16(p.body(SectionKind::RULES), r(0, 24), 0)),
        Expect::Kind("bad-program"),
    );
    add(
        "rule-always-flag-flipped".into(),
        with(&|p| p.body(SectionKind::RULES)[r(0, 26)] ^= 1),
        Expect::Kind("bad-always-flag"),
    );

    // The Channel File 291 case: a rule reads input field 21, which the sensor
    // does not supply (the schema declares it; the sensor has 4 fields).
    add(
        "cf291-rule-reads-field-21".into(),
        with(&|p| {
            p.body(SectionKind::SCHEMA)
                .extend_from_slice(&[21, 0, 1, 0]);
            let start = get_u32(p.body(SectionKind::RULES), r(0, 12)) as usize;
            put_u16(p.body(SectionKind::RULE_FIELDS), start * 2, 21);
        }),
        Expect::Kind("field-not-supplied"),
    );
    add(
        "rule-reads-undeclared-field".into(),
        with(&|p| {
            let start = get_u32(p.body(SectionKind::RULES), r(0, 12)) as usize;
            put_u16(p.body(SectionKind::RULE_FIELDS), start * 2, 21);
        }),
        Expect::Kind("field-not-declared"),
    );
    let mut pipe_only = Case {
        name: "sensor-without-image-field".into(),
        bytes: base.clone(),
        expect: Expect::Kind("field-not-supplied"),
        caps: Capabilities::from_fields(&[
            FieldId::PIPE_NAME,
            FieldId::PROCESS_ID,
            FieldId::EVENT_KIND,
        ]),
        max_limits: false,
        misaligned: false,
    };
    out.push(pipe_only.clone());
    pipe_only.name = "sensor-without-event-kind".into();
    pipe_only.caps =
        Capabilities::from_fields(&[FieldId::PIPE_NAME, FieldId::IMAGE, FieldId::PROCESS_ID]);
    out.push(pipe_only);
    let mut add = |name: String, bytes: Vec<u8>, expect: Expect| {
        out.push(Case {
            name,
            bytes,
            expect,
            caps,
            max_limits: false,
            misaligned: false,
        });
    };

    // Programs.
    let prog_at =
        |p: &mut Parts, rule: usize| get_u32(p.body(SectionKind::RULES), r(rule, 20)) as usize;
    add(
        "program-bad-opcode".into(),
        with(&|p| {
            let at = prog_at(p, 0);
            p.body(SectionKind::PROGRAMS)[at] = 0x7F
        }),
        Expect::Kind("bad-program"),
    );
    add(
        "program-atom-outside-rule".into(),
        with(&|p| {
            let at = prog_at(p, 0);
            put_u32(p.body(SectionKind::PROGRAMS), at + 1, 3)
        }),
        Expect::Kind("bad-program"),
    );
    add(
        "program-atom-huge".into(),
        with(&|p| {
            let at = prog_at(p, 0);
            put_u32(p.body(SectionKind::PROGRAMS), at + 1, u32::MAX)
        }),
        Expect::Kind("bad-program"),
    );
    add(
        "program-underflow".into(),
        with(&|p| {
            let at = prog_at(p, 1);
            p.body(SectionKind::PROGRAMS)[at] = fmt::op::AND
        }),
        Expect::Kind("bad-program"),
    );
    add(
        "program-leaves-two-values".into(),
        with(&|p| {
            let at = prog_at(p, 1);
            let len = get_u32(p.body(SectionKind::RULES), r(1, 24)) as usize & 0xFFFF;
            p.body(SectionKind::PROGRAMS)[at + len - 1] = fmt::op::TRUE;
        }),
        Expect::Kind("bad-program"),
    );

    // Atoms.
    let a = |i: usize, at: usize| i * fmt::ATOM_LEN + at;
    add(
        "atoms-len-not-multiple".into(),
        with(&|p| p.body(SectionKind::ATOMS).push(0)),
        Expect::Kind("bad-section-len"),
    );
    add(
        "atom-kind-99".into(),
        with(&|p| p.body(SectionKind::ATOMS)[a(0, 6)] = 99),
        Expect::Kind("invalid-value"),
    );
    add(
        "atom-field-not-in-rule".into(),
        with(&|p| put_u16(p.body(SectionKind::ATOMS), a(0, 4), FieldId::IMAGE.0)),
        Expect::Kind("bad-atom-field"),
    );
    add(
        "atom-numeric-test-on-string".into(),
        with(&|p| p.body(SectionKind::ATOMS)[a(0, 6)] = 7),
        Expect::Kind("bad-atom-field"),
    );
    add(
        "atom-wrong-rule".into(),
        with(&|p| put_u32(p.body(SectionKind::ATOMS), a(0, 0), 1)),
        Expect::Kind("out-of-range"),
    );
    add(
        "atom-string-out-of-range".into(),
        with(&|p| put_u32(p.body(SectionKind::ATOMS), a(0, 8), 1 << 24)),
        Expect::Kind("out-of-range"),
    );
    add(
        "atom-string-len-huge".into(),
        with(&|p| put_u32(p.body(SectionKind::ATOMS), a(0, 12), 1 << 24)),
        Expect::Kind("limit-exceeded"),
    );
    add(
        "atom-flags-unknown".into(),
        with(&|p| p.body(SectionKind::ATOMS)[a(0, 7)] = 0x80),
        Expect::Kind("invalid-value"),
    );
    add(
        "literal-not-folded".into(),
        with(&|p| {
            let off = get_u32(p.body(SectionKind::ATOMS), a(0, 8)) as usize;
            p.body(SectionKind::STRINGS)[off + 1] = b'p'
        }),
        Expect::OneOf(&["not-folded"]),
    );
    add(
        "atom-appended-for-rule-0".into(),
        with(&|p| {
            let b = p.body(SectionKind::ATOMS);
            let mut last = b[b.len() - 20..].to_vec();
            last[..4].copy_from_slice(&[0; 4]);
            b.extend(last)
        }),
        Expect::Kind("out-of-range"),
    );
    {
        // The regex atom's DFA index.
        let mut p = parts.clone();
        let atoms = p.body(SectionKind::ATOMS).clone();
        if let Some(i) = (0..atoms.len() / 20).find(|&i| atoms[a(i, 6)] == fmt::AtomKind::REGEX.0) {
            let mut q = p.clone();
            put_u32(q.body(SectionKind::ATOMS), a(i, 16), 5);
            add(
                "atom-dfa-index-out-of-range".into(),
                q.build(),
                Expect::Kind("out-of-range"),
            );
        }
        // DFAs.
        let d = p.body(SectionKind::DFAS).clone();
        let off = get_u32(&d, 8) as usize;
        let len = get_u32(&d, 12) as usize;
        let mut q = p.clone();
        put_u32(q.body(SectionKind::DFAS), 12, (len - 8) as u32);
        add(
            "dfa-length-short".into(),
            q.build(),
            Expect::OneOf(&["invalid-dfa", "non-zero-reserved"]),
        );
        let mut q = p.clone();
        q.body(SectionKind::DFAS)[off] ^= 0xFF;
        add(
            "dfa-label-corrupt".into(),
            q.build(),
            Expect::Kind("invalid-dfa"),
        );
        // After the 32-byte label: the endianness check word, then the version.
        for (what, k) in [("endianness", off + 32), ("version", off + 36)] {
            let mut q = p.clone();
            q.body(SectionKind::DFAS)[k] ^= 0x55;
            add(
                format!("dfa-{what}-corrupt"),
                q.build(),
                Expect::Kind("invalid-dfa"),
            );
        }
        let mut q = p.clone();
        put_u32(q.body(SectionKind::DFAS), 8, 4);
        add(
            "dfa-offset-unaligned".into(),
            q.build(),
            Expect::Kind("out-of-range"),
        );
        let mut q = p.clone();
        put_u32(q.body(SectionKind::DFAS), 12, u32::MAX - 8);
        add(
            "dfa-length-huge".into(),
            q.build(),
            Expect::Kind("limit-exceeded"),
        );
        let mut q = p.clone();
        put_u32(q.body(SectionKind::DFAS), 0, 0x2000_0000);
        add(
            "dfa-count-huge".into(),
            q.build(),
            Expect::Kind("limit-exceeded"),
        );
    }

    // Prefilter (first automaton: header at 8, states at 32).
    let st = |s: usize, w: usize| 32 + s * 16 + w * 4;
    add(
        "prefilter-count-3".into(),
        with(&|p| put_u32(p.body(SectionKind::PREFILTER), 0, 3)),
        Expect::Kind("limit-exceeded"),
    );
    add(
        "prefilter-field-pid".into(),
        with(&|p| put_u16(p.body(SectionKind::PREFILTER), 8, FieldId::PROCESS_ID.0)),
        Expect::Kind("bad-automaton"),
    );
    add(
        "prefilter-state-count-huge".into(),
        with(&|p| put_u32(p.body(SectionKind::PREFILTER), 12, u32::MAX)),
        Expect::Kind("limit-exceeded"),
    );
    add(
        "prefilter-edge-count-wrong".into(),
        with(&|p| {
            let b = p.body(SectionKind::PREFILTER);
            let e = get_u32(b, 16);
            put_u32(b, 16, e + 1)
        }),
        Expect::Kind("bad-automaton"),
    );
    add(
        "prefilter-fail-to-self".into(),
        with(&|p| put_u32(p.body(SectionKind::PREFILTER), st(3, 1), 3)),
        Expect::Kind("bad-automaton"),
    );
    add(
        "prefilter-fail-out-of-range".into(),
        with(&|p| put_u32(p.body(SectionKind::PREFILTER), st(3, 1), 1 << 30)),
        Expect::Kind("bad-automaton"),
    );
    add(
        "prefilter-dict-deeper".into(),
        with(&|p| put_u32(p.body(SectionKind::PREFILTER), st(2, 2), 5)),
        Expect::Kind("bad-automaton"),
    );
    add(
        "prefilter-root-fail".into(),
        with(&|p| put_u32(p.body(SectionKind::PREFILTER), st(0, 1), 1)),
        Expect::Kind("bad-automaton"),
    );
    add(
        "prefilter-edges-descending".into(),
        with(&|p| put_u32(p.body(SectionKind::PREFILTER), st(1, 0), 0)),
        Expect::Kind("bad-automaton"),
    );
    add(
        "prefilter-first-edge-past-end".into(),
        with(&|p| put_u32(p.body(SectionKind::PREFILTER), st(1, 0), 1 << 20)),
        Expect::Kind("bad-automaton"),
    );
    add(
        "prefilter-labels-unsorted".into(),
        with(&|p| {
            let b = p.body(SectionKind::PREFILTER);
            let s_count = get_u32(b, 12) as usize;
            let labels = 32 + s_count * 16;
            b.swap(labels, labels + 1);
        }),
        Expect::Kind("bad-automaton"),
    );
    add(
        "prefilter-output-atom-huge".into(),
        with(&|p| {
            let b = p.body(SectionKind::PREFILTER);
            let (s_count, e_count) = (get_u32(b, 12) as usize, get_u32(b, 16) as usize);
            let outputs = (32 + s_count * 16 + e_count + s_count).next_multiple_of(4);
            put_u32(b, outputs, u32::MAX);
        }),
        Expect::Kind("out-of-range"),
    );
    add(
        "prefilter-depth-wrong".into(),
        with(&|p| {
            let b = p.body(SectionKind::PREFILTER);
            let (s_count, e_count) = (get_u32(b, 12) as usize, get_u32(b, 16) as usize);
            b[32 + s_count * 16 + e_count + 1] = 9;
        }),
        Expect::Kind("bad-automaton"),
    );
    add(
        "prefilter-trailing".into(),
        with(&|p| p.body(SectionKind::PREFILTER).extend_from_slice(&[0; 8])),
        Expect::OneOf(&["bad-section-len", "truncated"]),
    );

    // Always list.
    add(
        "always-extra-entry".into(),
        with(&|p| {
            p.body(SectionKind::ALWAYS)
                .extend_from_slice(&0u32.to_le_bytes())
        }),
        Expect::Kind("bad-always-list"),
    );
    add(
        "always-empty".into(),
        with(&|p| p.body(SectionKind::ALWAYS).clear()),
        Expect::Kind("bad-always-list"),
    );
    add(
        "always-len-odd".into(),
        with(&|p| p.body(SectionKind::ALWAYS).push(0)),
        Expect::Kind("bad-section-len"),
    );

    // Overflow with limits lifted, and alignment.
    {
        let mut q = parts.clone();
        put_u32(q.body(SectionKind::DFAS), 0, 0x2000_0000);
        out.push(Case {
            name: "dfa-count-overflow".into(),
            bytes: q.build(),
            expect: Expect::OneOf(&["overflow", "truncated"]),
            caps,
            max_limits: true,
            misaligned: false,
        });
        let mut q = parts.clone();
        put_u32(q.body(SectionKind::PREFILTER), 12, 0x1000_0001);
        put_u32(q.body(SectionKind::PREFILTER), 16, 0x1000_0000);
        out.push(Case {
            name: "prefilter-states-overflow".into(),
            bytes: q.build(),
            expect: Expect::OneOf(&["overflow", "truncated"]),
            caps,
            max_limits: true,
            misaligned: false,
        });
        let mut b = base.clone();
        put_u32(&mut b, h::SECTION_COUNT, 0x1000_0000);
        out.push(Case {
            name: "section-count-overflow".into(),
            bytes: b,
            expect: Expect::OneOf(&["overflow", "truncated"]),
            caps,
            max_limits: true,
            misaligned: false,
        });
    }
    out.push(Case {
        name: "misaligned-buffer".into(),
        bytes: base.clone(),
        expect: Expect::Kind("misaligned"),
        caps,
        max_limits: false,
        misaligned: true,
    });
    out.push(Case {
        name: "valid-fixture".into(),
        bytes: base,
        expect: Expect::Valid,
        caps,
        max_limits: false,
        misaligned: false,
    });
    out
}

/// The ENFORCEMENT section (FORMAT.md §15): a valid policy, and every way
/// its fields can be wrong.
fn enforcement_cases(add: &mut dyn FnMut(String, Vec<u8>, Expect)) {
    use core::mem::offset_of;
    use fmt::RawEnforcement as R;
    let policy = channel_parser::EnforcementPolicy {
        monitor_first: Some([3_600, 14_400, 86_400]),
        rule_breaker: Some(channel_parser::BreakerLimit {
            denies: 20,
            window_secs: 60,
        }),
        machine_breaker: Some(channel_parser::BreakerLimit {
            denies: 100,
            window_secs: 60,
        }),
    };
    let file = |p: channel_parser::EnforcementPolicy| match crate::compile_unchecked(
        &fixture_rules(),
        &CompileOptions {
            sequence: 7,
            enforcement: Some(p),
            ..CompileOptions::default()
        },
    ) {
        Ok(b) => b,
        Err(e) => panic!("{e}"),
    };
    let full = file(policy);
    let parts = Parts::of(&full);
    let edit = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut p = parts.clone();
        f(p.body(SectionKind::ENFORCEMENT));
        p.build()
    };
    add("enforcement-valid".into(), full.clone(), Expect::Valid);
    add(
        "enforcement-monitor-first-only-valid".into(),
        file(channel_parser::EnforcementPolicy {
            monitor_first: Some([0, 0, fmt::MAX_MONITOR_FIRST_SECS]),
            ..Default::default()
        }),
        Expect::Valid,
    );
    add(
        "enforcement-breaker-at-bounds-valid".into(),
        file(channel_parser::EnforcementPolicy {
            rule_breaker: Some(channel_parser::BreakerLimit {
                denies: fmt::MAX_RULE_BREAKER_DENIES,
                window_secs: fmt::MAX_BREAKER_WINDOW_SECS,
            }),
            machine_breaker: Some(channel_parser::BreakerLimit {
                denies: 1,
                window_secs: 1,
            }),
            ..Default::default()
        }),
        Expect::Valid,
    );
    let u32_case = |name: &str, at: usize, v: u32, kind: &'static str| {
        (
            name.to_string(),
            edit(&|b| put_u32(b, at, v)),
            Expect::Kind(kind),
        )
    };
    for (name, bytes, expect) in [
        u32_case(
            "enforcement-version-2",
            offset_of!(R, version),
            2,
            "invalid-value",
        ),
        u32_case(
            "enforcement-unknown-flag",
            offset_of!(R, flags),
            8 | 7,
            "invalid-value",
        ),
        u32_case(
            "enforcement-reserved",
            offset_of!(R, reserved),
            1,
            "non-zero-reserved",
        ),
        u32_case(
            "enforcement-monitor-first-over-30-days",
            offset_of!(R, monitor_first_early),
            fmt::MAX_MONITOR_FIRST_SECS + 1,
            "invalid-value",
        ),
        u32_case(
            "enforcement-rule-denies-zero",
            offset_of!(R, rule_denies),
            0,
            "invalid-value",
        ),
        u32_case(
            "enforcement-rule-denies-over-limit",
            offset_of!(R, rule_denies),
            fmt::MAX_RULE_BREAKER_DENIES + 1,
            "invalid-value",
        ),
        u32_case(
            "enforcement-rule-window-zero",
            offset_of!(R, rule_window_secs),
            0,
            "invalid-value",
        ),
        u32_case(
            "enforcement-machine-denies-over-limit",
            offset_of!(R, machine_denies),
            fmt::MAX_MACHINE_BREAKER_DENIES + 1,
            "invalid-value",
        ),
        u32_case(
            "enforcement-machine-window-over-a-day",
            offset_of!(R, machine_window_secs),
            fmt::MAX_BREAKER_WINDOW_SECS + 1,
            "invalid-value",
        ),
        // A part's fields with its flag clear.
        u32_case(
            "enforcement-periods-without-flag",
            offset_of!(R, flags),
            fmt::ENFORCEMENT_FLAG_RULE_BREAKER | fmt::ENFORCEMENT_FLAG_MACHINE_BREAKER,
            "non-zero-reserved",
        ),
        u32_case(
            "enforcement-rule-breaker-without-flag",
            offset_of!(R, flags),
            fmt::ENFORCEMENT_FLAG_MONITOR_FIRST | fmt::ENFORCEMENT_FLAG_MACHINE_BREAKER,
            "non-zero-reserved",
        ),
        u32_case(
            "enforcement-machine-breaker-without-flag",
            offset_of!(R, flags),
            fmt::ENFORCEMENT_FLAG_MONITOR_FIRST | fmt::ENFORCEMENT_FLAG_RULE_BREAKER,
            "non-zero-reserved",
        ),
        (
            "enforcement-short".into(),
            edit(&|b| b.truncate(fmt::ENFORCEMENT_LEN - 4)),
            Expect::Kind("bad-section-len"),
        ),
        (
            "enforcement-long".into(),
            edit(&|b| b.extend_from_slice(&[0; 8])),
            Expect::Kind("bad-section-len"),
        ),
        (
            "enforcement-empty".into(),
            edit(&|b| b.clear()),
            Expect::OneOf(&["truncated", "bad-section-len"]),
        ),
    ] {
        add(name, bytes, expect);
    }
    // Twice: a duplicate known section.
    let mut p = parts.clone();
    let body = p.body(SectionKind::ENFORCEMENT).clone();
    p.sections.push((SectionKind::ENFORCEMENT, 0, body));
    add(
        "enforcement-twice".into(),
        p.build(),
        Expect::Kind("duplicate-section"),
    );
}

/// An 8-byte ROLLOUT section that claims a policy.
fn with_rollout_flags(parts: &Parts) -> Vec<u8> {
    let mut p = parts.clone();
    put_u32(p.body(SectionKind::ROLLOUT), 4, 1);
    p.build()
}

fn parts_boundaries(base: &[u8]) -> Vec<usize> {
    let mut v = vec![64];
    let aligned = AlignedBytes::new(base);
    if let Ok(f) = channel_parser::parse(aligned.as_slice(), &Capabilities::SENSOR_V1) {
        for s in f.sections() {
            for d in [0usize, 1, 4] {
                v.push(s.offset as usize + d);
                v.push((s.offset + s.len) as usize - d.min(s.len as usize));
            }
        }
    }
    v
}
