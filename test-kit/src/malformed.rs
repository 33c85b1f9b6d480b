//! The malformed corpus: channel files built by code from a valid one, each
//! with the [`channel_parser::ParseError`] kind it must be rejected with.
//!
//! Used by the parser's tests (every case rejected with the expected variant),
//! by `pipectl gen-malformed` (files for the driver's Wine tests) and as fuzz
//! seeds.
//!
//! Every change is made through `channel_format`'s record tables (a named
//! field of a numbered record), never at a byte offset spelled here. The
//! corpus is built area by area ([`corpus`]), each area one function.

use channel_format::{
    self as fmt, atom, dfa_entry, dfa_header, dfa_table, enforcement, header, prefilter,
    range_table, rollout, rule, schema, section, Action, AtomKind, AtomRecord, AutomatonLayout,
    AutomatonRecord, DfaEntryRecord, DfaRecord, DfaTableRecord, Field, Le, RangeTableRecord,
    SectionKind, Severity,
};
use channel_parser::Capabilities;
use pipe_compiler::compile::assemble;
use pipe_compiler::model::{Atom, Cond, FieldId, GlobTok, Matcher, Rule, RuleSet, SourceLoc};
use pipe_compiler::{compile_unchecked, AlignedBytes, CompileOptions};

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
/// fields, numeric fields, regexes (so DFAs, one with sparse rows),
/// always-evaluated rules, an eager and a lazy prefilter automaton.
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
            // A fifth gate, not anchored: the pipe-name automaton is eager
            // (scanned on every event). The image atom is no gate: the
            // image automaton is lazy.
            rule(
                70,
                "mimikatz from temp",
                Cond::And(vec![
                    atom(FieldId::PIPE_NAME, Matcher::Contains("mimikatz".into())),
                    atom(FieldId::IMAGE, Matcher::Contains("\\temp\\".into())),
                ]),
            ),
            // An anchored regex: a DFA with sparse rows.
            rule(
                80,
                "anchored regex",
                atom(
                    FieldId::PIPE_NAME,
                    Matcher::Regex {
                        pattern: r"^\\winsock_[0-9a-f]{8}_(x|y)$".into(),
                        case_insensitive: false,
                    },
                ),
            ),
            // A rule on User (field 5): its pipe-name prefix is the gate;
            // the `contains` on User puts a third, lazy automaton in the
            // file (the exact SID is compared directly).
            rule(
                90,
                "a pipe of Local System or a local account",
                Cond::And(vec![
                    atom(FieldId::PIPE_NAME, Matcher::Prefix("\\user_".into())),
                    Cond::Or(vec![
                        atom(FieldId::USER, Matcher::Exact("S-1-5-18".into())),
                        atom(FieldId::USER, Matcher::Contains("S-1-5-21-".into())),
                    ]),
                ]),
            ),
        ],
    }
}

/// The valid file the corpus mutates. Written with the low-level writer:
/// its block rules are test data (one matches any connect that is not to a
/// pipe containing `lsass`), not content for machines, which `compile`
/// would refuse (`pipe_compiler::protect`).
pub fn fixture_file() -> Vec<u8> {
    match compile_unchecked(
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

/// A valid file taken apart into its sections, to rebuild with changes
/// (header and section table are written again by
/// `pipe_compiler::compile::assemble`).
#[derive(Debug, Clone)]
pub struct Parts {
    /// The header's sequence number.
    pub sequence: u64,
    /// (kind, flags, body) in file order.
    pub sections: Vec<(SectionKind, u32, Vec<u8>)>,
}

impl Parts {
    /// Takes a valid file apart.
    ///
    /// # Panics
    /// When `bytes` is not a valid channel file.
    pub fn of(bytes: &[u8]) -> Parts {
        let aligned = AlignedBytes::new(bytes);
        let file = match channel_parser::parse(aligned.as_slice(), &Capabilities::SENSOR) {
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
    /// The body of the section of `kind`.
    ///
    /// # Panics
    /// When there is no such section.
    pub fn body(&mut self, kind: SectionKind) -> &mut Vec<u8> {
        match self.sections.iter_mut().find(|s| s.0 == kind) {
            Some(s) => &mut s.2,
            None => panic!("no section {kind}"),
        }
    }
    /// The file laid out again.
    pub fn build(&self) -> Vec<u8> {
        assemble(self.sequence, 0, &self.sections)
    }
    /// The bytes of rule record `i`.
    fn rule(&mut self, i: usize) -> &mut [u8] {
        nth_mut::<{ rule::LEN }>(self.body(SectionKind::RULES), i, "rule")
    }
    /// The bytes of atom record `i`.
    fn atom(&mut self, i: usize) -> &mut [u8] {
        nth_mut::<{ atom::LEN }>(self.body(SectionKind::ATOMS), i, "atom")
    }
    /// Field `f` of rule record `i`.
    fn rule_field<T: Le>(&mut self, i: usize, f: Field<T>) -> T {
        get(self.rule(i), f)
    }
    /// The PREFILTER body, the header and the layout of its first
    /// automaton (which starts after the section's header).
    fn automaton0(&mut self) -> (&mut Vec<u8>, AutomatonRecord, AutomatonLayout) {
        let b = self.body(SectionKind::PREFILTER);
        let h = AutomatonRecord::read(&b[prefilter::LEN..]).expect("automaton header");
        let layout = AutomatonLayout::new(
            h.state_count,
            h.dense_count,
            u32::from(h.class_count),
            h.output_count,
            h.flags & fmt::AUTOMATON_FLAG_NARROW != 0,
        )
        .expect("automaton layout");
        (b, h, layout)
    }
    /// The bytes of DFAS entry `i`'s blob (a DFA, or a range table when
    /// `i` is at least the DFA count).
    fn dfa_blob(&mut self, i: usize) -> &mut [u8] {
        let d = self.body(SectionKind::DFAS);
        let e = DfaEntryRecord::read_nth(&d[dfa_table::LEN..], i).expect("DFA entry");
        &mut d[e.offset as usize..(e.offset + e.len) as usize]
    }
    /// The byte at `at` (an [`AutomatonLayout`] offset) of the first
    /// automaton.
    fn automaton_byte(&mut self, at: u32) -> &mut u8 {
        &mut self.body(SectionKind::PREFILTER)[prefilter::LEN + at as usize]
    }
}

/// Record `i` (of `LEN` bytes) of `body`.
fn nth_mut<'a, const LEN: usize>(body: &'a mut [u8], i: usize, what: &str) -> &'a mut [u8] {
    let start = i * LEN;
    body.get_mut(start..start + LEN)
        .unwrap_or_else(|| panic!("no {what} record {i}"))
}

/// Field `f` of a record.
fn get<T: Le>(record: &[u8], f: Field<T>) -> T {
    f.get(record).expect("field inside its record")
}

/// Sets field `f` of a record.
fn set<T: Le>(record: &mut [u8], f: Field<T>, v: T) {
    f.set(record, v).expect("field inside its record");
}

/// Section-table entry `i` of a whole file.
fn table_entry(file: &mut [u8], i: usize) -> &mut [u8] {
    nth_mut::<{ section::LEN }>(&mut file[header::LEN..], i, "section-table entry")
}

/// Builds the corpus: the valid base file, its sections, and the cases so far.
struct Gen {
    base: Vec<u8>,
    parts: Parts,
    caps: Capabilities,
    out: Vec<Case>,
}

impl Gen {
    fn new() -> Gen {
        let base = fixture_file();
        let parts = Parts::of(&base);
        Gen {
            base,
            parts,
            caps: Capabilities::SENSOR,
            out: Vec::new(),
        }
    }

    /// A case parsed with the sensor's capabilities and default limits.
    fn add(&mut self, name: impl Into<String>, bytes: Vec<u8>, expect: Expect) {
        self.push(name, bytes, expect, false);
    }

    /// A case parsed with every limit at its maximum (`max_limits`).
    fn add_unlimited(&mut self, name: impl Into<String>, bytes: Vec<u8>, expect: Expect) {
        self.push(name, bytes, expect, true);
    }

    fn push(&mut self, name: impl Into<String>, bytes: Vec<u8>, expect: Expect, max: bool) {
        self.out.push(Case {
            name: name.into(),
            bytes,
            expect,
            caps: self.caps,
            max_limits: max,
            misaligned: false,
        });
    }

    /// The base file with `f` applied to its bytes.
    fn header(&self, f: impl Fn(&mut Vec<u8>)) -> Vec<u8> {
        let mut b = self.base.clone();
        f(&mut b);
        b
    }

    /// The base file's sections with `f` applied, laid out again.
    fn with(&self, f: impl Fn(&mut Parts)) -> Vec<u8> {
        let mut p = self.parts.clone();
        f(&mut p);
        p.build()
    }
}

/// The whole corpus. `every_offset` adds a truncation at every byte offset
/// (hundreds of files); without it truncations are taken at section
/// boundaries and a sample of offsets.
pub fn corpus(every_offset: bool) -> Vec<Case> {
    let mut g = Gen::new();
    truncations(&mut g, every_offset);
    header_fields(&mut g);
    section_table(&mut g);
    rollout_section(&mut g);
    enforcement_section(&mut g);
    schema_section(&mut g);
    rule_records(&mut g);
    fields_not_supplied(&mut g);
    programs(&mut g);
    atom_records(&mut g);
    dfas(&mut g);
    prefilter_automata(&mut g);
    always_list(&mut g);
    overflow_and_alignment(&mut g);
    g.out
}

/// The base file cut at offsets, as is (length mismatch) and with the total
/// length patched to the cut.
fn truncations(g: &mut Gen, every_offset: bool) {
    let boundaries: Vec<usize> = parts_boundaries(&g.base);
    // Offsets inside the header and the first section-table entries.
    let early = header::LEN + fmt::SECTION_ALIGN as usize;
    for n in 0..g.base.len() {
        if every_offset
            || boundaries.contains(&n)
            || n % 97 == 0
            || n < early && n % fmt::SECTION_ALIGN as usize == 0
        {
            let expect = if n < header::LEN {
                Expect::Kind("truncated")
            } else {
                Expect::Kind("length-mismatch")
            };
            g.add(format!("truncate-{n:05}"), g.base[..n].to_vec(), expect);
            if n >= header::LEN {
                let mut b = g.base[..n].to_vec();
                set(&mut b, header::TOTAL_LEN, n as u32);
                g.add(
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
}

/// Every header field changed.
fn header_fields(g: &mut Gen) {
    for i in 0..header::MAGIC.len() {
        let at = header::MAGIC.offset() + i;
        let b = g.header(|b| b[at] ^= 0x20);
        g.add(
            format!("header-magic-byte-{i}"),
            b,
            Expect::Kind("bad-magic"),
        );
    }
    let b = g.header(|b| set(b, header::ENDIAN, 0xFFFE));
    g.add("header-endian-swapped", b, Expect::Kind("bad-endianness"));
    let b = g.header(|b| set(b, header::HEADER_LEN, fmt::HEADER_LEN + 1));
    g.add("header-len-65", b, Expect::Kind("bad-header-len"));
    let b = g.header(|b| set(b, header::FORMAT_MAJOR, 0));
    g.add("header-major-0", b, Expect::Kind("unsupported-version"));
    // Format 1 (the frozen files of parser/tests/compat are the real ones)
    // and the next major version.
    let b = g.header(|b| set(b, header::FORMAT_MAJOR, 1));
    g.add("header-major-1", b, Expect::Kind("unsupported-version"));
    let b = g.header(|b| set(b, header::FORMAT_MAJOR, fmt::FORMAT_VERSION + 1));
    g.add("header-major-next", b, Expect::Kind("unsupported-version"));
    let b = g.header(|b| set(b, header::FORMAT_MINOR, 7));
    g.add("header-minor-7", b, Expect::Valid);
    let b = g.header(|b| set(b, header::CHANNEL, 290));
    g.add("header-channel-290", b, Expect::Kind("wrong-channel"));
    for bit in 0..32 {
        let b = g.header(|b| set(b, header::REQUIRED_FLAGS, 1 << bit));
        g.add(
            format!("header-required-flag-{bit:02}"),
            b,
            Expect::Kind("unknown-required-flags"),
        );
    }
    let b = g.header(|b| set(b, header::SEQUENCE, u64::MAX));
    g.add("header-sequence-max", b, Expect::Valid);
    let total = g.base.len() as u32;
    let b = g.header(|b| set(b, header::TOTAL_LEN, total - 8));
    g.add(
        "header-total-len-minus-8",
        b,
        Expect::Kind("length-mismatch"),
    );
    let b = g.header(|b| set(b, header::TOTAL_LEN, u32::MAX));
    g.add("header-total-len-max", b, Expect::Kind("length-mismatch"));
    let b = g.header(|b| set(b, header::SECTION_COUNT, 0));
    g.add("header-section-count-0", b, Expect::Kind("missing-section"));
    let count = g.parts.sections.len() as u32;
    let b = g.header(|b| set(b, header::SECTION_COUNT, count + 1));
    g.add(
        "header-section-count-plus-1",
        b,
        Expect::OneOf(&[
            "section-out-of-bounds",
            "section-misaligned",
            "bad-section-flags",
            "section-overlap",
            "duplicate-section",
            "unknown-critical-section",
        ]),
    );
    let b = g.header(|b| set(b, header::SECTION_COUNT, u32::MAX));
    g.add(
        "header-section-count-huge",
        b,
        Expect::Kind("limit-exceeded"),
    );
    let b = g.header(|b| set(b, header::OPTIONAL_FLAGS, 0xFFFF_FFFF));
    g.add("header-optional-flags", b, Expect::Valid);
    for at in (header::RESERVED.offset()..header::RESERVED.end()).step_by(3) {
        let b = g.header(|b| b[at] = 1);
        g.add(
            format!("header-reserved-byte-{at}"),
            b,
            Expect::Kind("non-zero-reserved"),
        );
    }
}

/// Section-table entries out of bounds, overlapping, misaligned, doubled,
/// unknown; sections missing; non-zero padding between sections.
fn section_table(g: &mut Gen) {
    let total = g.base.len() as u32;
    let b = g.header(|b| set(table_entry(b, 2), section::OFFSET, total + 8));
    g.add(
        "section-offset-past-end",
        b,
        Expect::Kind("section-out-of-bounds"),
    );
    let b = g.header(|b| set(table_entry(b, 2), section::LENGTH, u32::MAX - 4));
    g.add("section-len-huge", b, Expect::Kind("section-out-of-bounds"));
    // An offset inside the section table itself.
    let b = g.header(|b| set(table_entry(b, 1), section::OFFSET, header::LEN_U32));
    g.add(
        "section-offset-in-table",
        b,
        Expect::Kind("section-out-of-bounds"),
    );
    let b = g.header(|b| {
        let e = table_entry(b, 3);
        let o = get(e, section::OFFSET);
        set(e, section::OFFSET, o + fmt::SECTION_ALIGN / 2)
    });
    g.add(
        "section-misaligned",
        b,
        Expect::OneOf(&["section-misaligned"]),
    );
    let b = g.header(|b| {
        let o = get(table_entry(b, 0), section::OFFSET);
        set(table_entry(b, 1), section::OFFSET, o)
    });
    g.add("section-into-other", b, Expect::Kind("section-overlap"));
    let b = g.header(|b| {
        let k = get(table_entry(b, 0), section::KIND);
        set(table_entry(b, 1), section::KIND, k)
    });
    g.add(
        "section-duplicate-kind",
        b,
        Expect::Kind("duplicate-section"),
    );
    let last = g.parts.sections.len() - 1;
    let b = g.header(|b| {
        let e = table_entry(b, last);
        set(e, section::KIND, 99);
        set(e, section::FLAGS, fmt::SECTION_FLAG_CRITICAL)
    });
    g.add(
        "section-unknown-critical",
        b,
        Expect::Kind("unknown-critical-section"),
    );
    let b = g.header(|b| set(table_entry(b, 0), section::FLAGS, 6));
    g.add("section-bad-flags", b, Expect::Kind("bad-section-flags"));
    {
        let mut p = g.parts.clone();
        p.sections.push((SectionKind(99), 0, vec![1, 2, 3]));
        g.add("section-unknown-optional", p.build(), Expect::Valid);
    }
    for kind in fmt::REQUIRED_SECTIONS {
        let mut p = g.parts.clone();
        p.sections.retain(|s| s.0 != kind);
        g.add(
            format!("section-missing-{kind}"),
            p.build(),
            Expect::Kind("missing-section"),
        );
    }
    // Non-zero padding between two sections (the STRINGS section is rarely a
    // multiple of 8).
    let mut p = g.parts.clone();
    p.body(SectionKind::SCHEMA).truncate(fmt::schema::LEN);
    let b = p.build();
    let mut gap = None;
    let aligned = AlignedBytes::new(&b);
    if let Ok(f) = channel_parser::parse(aligned.as_slice(), &g.caps) {
        let secs: Vec<_> = f.sections().collect();
        for s in &secs {
            let end = (s.offset + s.len) as usize;
            if !end.is_multiple_of(fmt::SECTION_ALIGN as usize)
                && !secs.iter().any(|t| t.offset as usize == end)
            {
                gap = Some(end);
            }
        }
    }
    if let Some(at) = gap {
        let mut b2 = b.clone();
        b2[at] = 0xAA;
        g.add("padding-nonzero", b2, Expect::Kind("non-zero-reserved"));
    }
}

/// ROLLOUT: version, ring, share, flags, reserved bytes, lengths.
fn rollout_section(g: &mut Gen) {
    let b = g.with(|p| set(p.body(SectionKind::ROLLOUT), rollout::VERSION, 2));
    g.add("rollout-version-2", b, Expect::Kind("invalid-value"));

    let policy = channel_parser::RolloutPolicy {
        staged: Some(channel_parser::Staging {
            ring: channel_format::Ring::EARLY,
            percent_milli: 12_500,
            not_before: 1_800_000_000,
        }),
        rollback_ceiling: Some(45),
    };
    let staged = match compile_unchecked(
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
    g.add("rollout-policy-valid", staged.clone(), Expect::Valid);
    g.add(
        "rollout-ring-7",
        roll(&|b| set(b, rollout::RING, 7)),
        Expect::Kind("invalid-value"),
    );
    g.add(
        "rollout-percent-over-100",
        roll(&|b| {
            set(
                b,
                rollout::PERCENT_MILLI,
                fmt::ROLLOUT_PERCENT_MILLI_MAX + 1,
            )
        }),
        Expect::Kind("invalid-value"),
    );
    g.add(
        "rollout-unknown-flag",
        roll(&|b| set(b, rollout::FLAGS, 7)),
        Expect::Kind("invalid-value"),
    );
    g.add(
        "rollout-reserved",
        roll(&|b| set(b, rollout::RESERVED, [0, 1, 0])),
        Expect::Kind("non-zero-reserved"),
    );
    g.add(
        "rollout-short",
        roll(&|b| b.truncate(fmt::ROLLOUT_LEN / 2)),
        Expect::Kind("bad-section-len"),
    );
    g.add(
        "rollout-ceiling-without-flag",
        roll(&|b| set(b, rollout::FLAGS, fmt::ROLLOUT_FLAG_POLICY)),
        Expect::Kind("non-zero-reserved"),
    );
    // An 8-byte ROLLOUT section that claims a policy.
    let b = g.with(|p| {
        set(
            p.body(SectionKind::ROLLOUT),
            rollout::FLAGS,
            fmt::ROLLOUT_FLAG_POLICY,
        )
    });
    g.add(
        "rollout-flags-without-body",
        b,
        Expect::Kind("bad-section-len"),
    );
}

/// The ENFORCEMENT section (FORMAT.md §15): valid policies, and every way
/// its fields can be wrong.
fn enforcement_section(g: &mut Gen) {
    use enforcement as e;
    let limit = |denies, window_secs| {
        Some(channel_parser::BreakerLimit {
            denies,
            window_secs,
        })
    };
    let file = |p: channel_parser::EnforcementPolicy| match compile_unchecked(
        &fixture_rules(),
        &CompileOptions {
            sequence: 7,
            enforcement: Some(p),
            ..CompileOptions::default()
        },
    ) {
        Ok(b) => b,
        Err(err) => panic!("{err}"),
    };
    let full = file(channel_parser::EnforcementPolicy {
        monitor_first: Some([3_600, 14_400, 86_400]),
        rule_breaker: limit(20, 60),
        machine_breaker: limit(100, 60),
    });
    g.add("enforcement-valid", full.clone(), Expect::Valid);
    g.add(
        "enforcement-monitor-first-only-valid",
        file(channel_parser::EnforcementPolicy {
            monitor_first: Some([0, 0, fmt::MAX_MONITOR_FIRST_SECS]),
            ..Default::default()
        }),
        Expect::Valid,
    );
    g.add(
        "enforcement-breakers-at-bounds-valid",
        file(channel_parser::EnforcementPolicy {
            rule_breaker: limit(fmt::MAX_RULE_BREAKER_DENIES, fmt::MAX_BREAKER_WINDOW_SECS),
            machine_breaker: limit(1, 1),
            ..Default::default()
        }),
        Expect::Valid,
    );
    let parts = Parts::of(&full);
    let edit = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut p = parts.clone();
        f(p.body(SectionKind::ENFORCEMENT));
        p.build()
    };
    let flags = |bits: u32| move |b: &mut Vec<u8>| set(b, e::FLAGS, bits);
    for (name, f, v, expect) in [
        ("enforcement-version-2", e::VERSION, 2, "invalid-value"),
        ("enforcement-unknown-flag", e::FLAGS, 0xF, "invalid-value"),
        ("enforcement-reserved", e::RESERVED, 1, "non-zero-reserved"),
        (
            "enforcement-monitor-first-over-30-days",
            e::MONITOR_FIRST_EARLY,
            fmt::MAX_MONITOR_FIRST_SECS + 1,
            "invalid-value",
        ),
        (
            "enforcement-rule-denies-zero",
            e::RULE_DENIES,
            0,
            "invalid-value",
        ),
        (
            "enforcement-rule-denies-over-limit",
            e::RULE_DENIES,
            fmt::MAX_RULE_BREAKER_DENIES + 1,
            "invalid-value",
        ),
        (
            "enforcement-rule-window-zero",
            e::RULE_WINDOW_SECS,
            0,
            "invalid-value",
        ),
        (
            "enforcement-machine-denies-over-limit",
            e::MACHINE_DENIES,
            fmt::MAX_MACHINE_BREAKER_DENIES + 1,
            "invalid-value",
        ),
        (
            "enforcement-machine-window-over-a-day",
            e::MACHINE_WINDOW_SECS,
            fmt::MAX_BREAKER_WINDOW_SECS + 1,
            "invalid-value",
        ),
    ] {
        g.add(name, edit(&|b| set(b, f, v)), Expect::Kind(expect));
    }
    // A part's fields with its flag clear.
    for (name, bits) in [
        (
            "enforcement-periods-without-flag",
            fmt::ENFORCEMENT_FLAG_RULE_BREAKER | fmt::ENFORCEMENT_FLAG_MACHINE_BREAKER,
        ),
        (
            "enforcement-rule-breaker-without-flag",
            fmt::ENFORCEMENT_FLAG_MONITOR_FIRST | fmt::ENFORCEMENT_FLAG_MACHINE_BREAKER,
        ),
        (
            "enforcement-machine-breaker-without-flag",
            fmt::ENFORCEMENT_FLAG_MONITOR_FIRST | fmt::ENFORCEMENT_FLAG_RULE_BREAKER,
        ),
    ] {
        g.add(name, edit(&flags(bits)), Expect::Kind("non-zero-reserved"));
    }
    g.add(
        "enforcement-short",
        edit(&|b| b.truncate(fmt::ENFORCEMENT_LEN - 4)),
        Expect::Kind("bad-section-len"),
    );
    g.add(
        "enforcement-long",
        edit(&|b| b.extend_from_slice(&[0; 8])),
        Expect::Kind("bad-section-len"),
    );
    g.add(
        "enforcement-empty",
        edit(&|b| b.clear()),
        Expect::OneOf(&["truncated", "bad-section-len"]),
    );
    let mut p = parts.clone();
    let body = p.body(SectionKind::ENFORCEMENT).clone();
    p.sections.push((SectionKind::ENFORCEMENT, 0, body));
    g.add(
        "enforcement-twice",
        p.build(),
        Expect::Kind("duplicate-section"),
    );
}

/// SCHEMA entries.
fn schema_section(g: &mut Gen) {
    let b = g.with(|p| p.body(SectionKind::SCHEMA).push(0));
    g.add("schema-len-odd", b, Expect::Kind("bad-section-len"));
    let b = g.with(|p| {
        let body = p.body(SectionKind::SCHEMA);
        let first = body[..schema::LEN].to_vec();
        body.extend(first)
    });
    g.add("schema-duplicate-field", b, Expect::Kind("duplicate-field"));
    let b = g.with(|p| {
        let e = nth_mut::<{ schema::LEN }>(p.body(SectionKind::SCHEMA), 0, "schema");
        set(e, schema::FIELD_TYPE, fmt::FieldType::U32.0)
    });
    g.add("schema-wrong-type", b, Expect::Kind("field-type-mismatch"));
    let b = g.with(|p| {
        let e = nth_mut::<{ schema::LEN }>(p.body(SectionKind::SCHEMA), 0, "schema");
        set(e, schema::RESERVED, 1)
    });
    g.add("schema-reserved", b, Expect::Kind("non-zero-reserved"));
}

/// RULES records: ids, names, severity, action, flags, field and atom
/// ranges, programs.
fn rule_records(g: &mut Gen) {
    let b = g.with(|p| p.body(SectionKind::RULES).push(0));
    g.add("rules-len-not-multiple", b, Expect::Kind("bad-section-len"));
    let b = g.with(|p| {
        let id = p.rule_field(0, rule::ID);
        set(p.rule(1), rule::ID, id)
    });
    g.add("rule-duplicate-id", b, Expect::Kind("duplicate-rule-id"));
    let b = g.with(|p| set(p.rule(1), rule::ID, 1));
    g.add("rule-ids-descending", b, Expect::Kind("duplicate-rule-id"));
    let b = g.with(|p| set(p.rule(0), rule::NAME_OFF, 1 << 20));
    g.add("rule-name-out-of-range", b, Expect::Kind("out-of-range"));
    let b = g.with(|p| set(p.rule(0), rule::NAME_LEN, u32::MAX));
    g.add("rule-name-len-huge", b, Expect::Kind("limit-exceeded"));
    let b = g.with(|p| {
        let off = p.rule_field(0, rule::NAME_OFF) as usize;
        p.body(SectionKind::STRINGS)[off] = 0xFF
    });
    g.add("rule-name-invalid-utf8", b, Expect::Kind("invalid-utf8"));
    let b = g.with(|p| set(p.rule(0), rule::SEVERITY, 9));
    g.add("rule-severity-9", b, Expect::Kind("invalid-value"));
    let b = g.with(|p| set(p.rule(0), rule::ACTION, 7));
    g.add("rule-action-7", b, Expect::Kind("invalid-value"));
    let b = g.with(|p| {
        rule::FLAGS.update(p.rule(0), |f| f | 4);
    });
    g.add("rule-unknown-flag", b, Expect::Kind("invalid-value"));
    let b = g.with(|p| set(p.rule(0), rule::FIELDS_START, 1000));
    g.add("rule-fields-out-of-range", b, Expect::Kind("out-of-range"));
    let b = g.with(|p| set(p.rule(0), rule::FIELDS_COUNT, 60000));
    g.add("rule-fields-count-huge", b, Expect::Kind("limit-exceeded"));
    let b = g.with(|p| {
        let s = p.rule_field(1, rule::ATOMS_START);
        set(p.rule(1), rule::ATOMS_START, s + 1)
    });
    g.add("rule-atoms-start-wrong", b, Expect::Kind("out-of-range"));
    let b = g.with(|p| set(p.rule(5), rule::ATOMS_START, 10_000));
    g.add("rule-atoms-start-past-end", b, Expect::Kind("out-of-range"));
    let b = g.with(|p| set(p.rule(0), rule::PROG_OFF, 1 << 20));
    g.add("rule-program-out-of-range", b, Expect::Kind("out-of-range"));
    let b = g.with(|p| set(p.rule(0), rule::PROG_LEN, 0));
    g.add("rule-program-empty", b, Expect::Kind("bad-program"));
    let b = g.with(|p| {
        rule::FLAGS.update(p.rule(0), |f| f ^ fmt::RULE_FLAG_ALWAYS);
    });
    g.add(
        "rule-always-flag-flipped",
        b,
        Expect::Kind("bad-always-flag"),
    );
}

/// The Channel File 291 case and its relatives: a rule reads a field the
/// sensor does not supply or the schema does not declare.
fn fields_not_supplied(g: &mut Gen) {
    // A rule reads input field 21, which the sensor does not supply (the
    // schema declares it; the sensor has 4 fields).
    let b = g.with(|p| {
        let field21 = fmt::SchemaRecord {
            field: 21,
            field_type: fmt::FieldType::STRING.0,
            reserved: 0,
        };
        p.body(SectionKind::SCHEMA)
            .extend_from_slice(&field21.to_bytes());
        first_rule_field(p, 21);
    });
    g.add(
        "cf291-rule-reads-field-21",
        b,
        Expect::Kind("field-not-supplied"),
    );
    let b = g.with(|p| first_rule_field(p, 21));
    g.add(
        "rule-reads-undeclared-field",
        b,
        Expect::Kind("field-not-declared"),
    );
    let mut pipe_only = Case {
        name: "sensor-without-image-field".into(),
        bytes: g.base.clone(),
        expect: Expect::Kind("field-not-supplied"),
        caps: Capabilities::from_fields(&[
            FieldId::PIPE_NAME,
            FieldId::PROCESS_ID,
            FieldId::EVENT_KIND,
        ]),
        max_limits: false,
        misaligned: false,
    };
    g.out.push(pipe_only.clone());
    pipe_only.name = "sensor-without-event-kind".into();
    pipe_only.caps =
        Capabilities::from_fields(&[FieldId::PIPE_NAME, FieldId::IMAGE, FieldId::PROCESS_ID]);
    g.out.push(pipe_only.clone());
    // A driver from before `User` (rule 90 reads it): refused by name.
    pipe_only.name = "sensor-without-user-field".into();
    pipe_only.caps = Capabilities::SENSOR_V1;
    g.out.push(pipe_only);
}

/// Replaces rule 0's first field id.
fn first_rule_field(p: &mut Parts, field: u16) {
    let start = p.rule_field(0, rule::FIELDS_START) as usize;
    let rf =
        nth_mut::<{ fmt::rule_field::LEN }>(p.body(SectionKind::RULE_FIELDS), start, "rule field");
    set(rf, fmt::rule_field::FIELD, field);
}

/// Condition programs: opcodes, operands, stack.
fn programs(g: &mut Gen) {
    // The program of rule `i` (its offset in PROGRAMS).
    let prog_at = |p: &mut Parts, i: usize| p.rule_field(i, rule::PROG_OFF) as usize;
    // The operand of the first instruction (rule 0's program is one ATOM).
    let operand = |p: &mut Parts| {
        let at = prog_at(p, 0);
        assert_eq!(p.body(SectionKind::PROGRAMS)[at], fmt::op::ATOM);
        at + 1
    };
    let b = g.with(|p| {
        let at = prog_at(p, 0);
        p.body(SectionKind::PROGRAMS)[at] = 0x7F
    });
    g.add("program-bad-opcode", b, Expect::Kind("bad-program"));
    let b = g.with(|p| {
        let at = operand(p);
        p.body(SectionKind::PROGRAMS)[at..at + fmt::program::ATOM_OPERAND_LEN]
            .copy_from_slice(&3u32.to_le_bytes())
    });
    g.add("program-atom-outside-rule", b, Expect::Kind("bad-program"));
    let b = g.with(|p| {
        let at = operand(p);
        p.body(SectionKind::PROGRAMS)[at..at + fmt::program::ATOM_OPERAND_LEN]
            .copy_from_slice(&u32::MAX.to_le_bytes())
    });
    g.add("program-atom-huge", b, Expect::Kind("bad-program"));
    let b = g.with(|p| {
        let at = prog_at(p, 1);
        p.body(SectionKind::PROGRAMS)[at] = fmt::op::AND
    });
    g.add("program-underflow", b, Expect::Kind("bad-program"));
    let b = g.with(|p| {
        let at = prog_at(p, 1);
        let len = p.rule_field(1, rule::PROG_LEN) as usize;
        p.body(SectionKind::PROGRAMS)[at + len - 1] = fmt::op::TRUE;
    });
    g.add("program-leaves-two-values", b, Expect::Kind("bad-program"));
}

/// ATOMS records: kinds, fields, owners, strings, flags, folding.
fn atom_records(g: &mut Gen) {
    let b = g.with(|p| p.body(SectionKind::ATOMS).push(0));
    g.add("atoms-len-not-multiple", b, Expect::Kind("bad-section-len"));
    let b = g.with(|p| set(p.atom(0), atom::KIND, 99));
    g.add("atom-kind-99", b, Expect::Kind("invalid-value"));
    let b = g.with(|p| set(p.atom(0), atom::FIELD, FieldId::IMAGE.0));
    g.add("atom-field-not-in-rule", b, Expect::Kind("bad-atom-field"));
    let b = g.with(|p| set(p.atom(0), atom::KIND, AtomKind::NUM_EQ.0));
    g.add(
        "atom-numeric-test-on-string",
        b,
        Expect::Kind("bad-atom-field"),
    );
    let b = g.with(|p| set(p.atom(0), atom::RULE, 1));
    g.add("atom-wrong-rule", b, Expect::Kind("out-of-range"));
    let b = g.with(|p| set(p.atom(0), atom::STR_OFF, 1 << 24));
    g.add("atom-string-out-of-range", b, Expect::Kind("out-of-range"));
    let b = g.with(|p| set(p.atom(0), atom::STR_LEN, 1 << 24));
    g.add("atom-string-len-huge", b, Expect::Kind("limit-exceeded"));
    let b = g.with(|p| set(p.atom(0), atom::FLAGS, 0x80));
    g.add("atom-flags-unknown", b, Expect::Kind("invalid-value"));
    let b = g.with(|p| {
        let off = get(p.atom(0), atom::STR_OFF) as usize;
        p.body(SectionKind::STRINGS)[off + 1] = b'p'
    });
    g.add("literal-not-folded", b, Expect::OneOf(&["not-folded"]));
    let b = g.with(|p| {
        let body = p.body(SectionKind::ATOMS);
        let n = body.len() / atom::LEN;
        let last = AtomRecord::read_nth(body, n - 1).expect("last atom");
        body.extend_from_slice(&AtomRecord { rule: 0, ..last }.to_bytes())
    });
    g.add("atom-appended-for-rule-0", b, Expect::Kind("out-of-range"));
    // A stored glob (the fixture's `\\PSEXESVC*`: an escaped backslash, a
    // literal, a star) with a bad escape, a lower-case letter, and a lone
    // backslash at its end (ASCII globs take the parser's byte scan).
    let atoms = g.parts.clone().body(SectionKind::ATOMS).clone();
    let strings = g.parts.clone().body(SectionKind::STRINGS).clone();
    let glob = (0..atoms.len() / atom::LEN).find_map(|i| {
        let a = AtomRecord::read_nth(&atoms, i)?;
        let text = strings.get(a.str_off as usize..(a.str_off + a.str_len) as usize)?;
        (a.kind == AtomKind::GLOB.0 && text.starts_with(b"\\\\") && text.len() > 3)
            .then_some((a.str_off as usize, a.str_len as usize))
    });
    if let Some((off, len)) = glob {
        for (name, at, byte) in [
            ("glob-bad-escape", off + 1, b'A'),
            ("glob-not-folded", off + 2, b'p'),
            ("glob-trailing-backslash", off + len - 1, b'\\'),
        ] {
            let b = g.with(|p| p.body(SectionKind::STRINGS)[at] = byte);
            g.add(name, b, Expect::Kind("not-folded"));
        }
    }
    // A lower-case letter where the glob has `?`: in no literal piece, so
    // only the glob's own check sees it.
    let one = (0..atoms.len() / atom::LEN).find_map(|i| {
        let a = AtomRecord::read_nth(&atoms, i)?;
        let text = strings.get(a.str_off as usize..(a.str_off + a.str_len) as usize)?;
        let at = text.iter().position(|&c| c == b'?')?;
        (a.kind == AtomKind::GLOB.0).then_some(a.str_off as usize + at)
    });
    if let Some(at) = one {
        let b = g.with(|p| p.body(SectionKind::STRINGS)[at] = b'q');
        g.add("glob-lower-case-letter", b, Expect::Kind("not-folded"));
    }
    // The regex atom's DFA index.
    let regex = (0..atoms.len() / atom::LEN)
        .find(|&i| AtomRecord::read_nth(&atoms, i).map(|a| a.kind) == Some(AtomKind::REGEX.0));
    if let Some(i) = regex {
        let b = g.with(|p| set(p.atom(i), atom::ARG, 5));
        g.add(
            "atom-dfa-index-out-of-range",
            b,
            Expect::Kind("out-of-range"),
        );
    }
}

/// DFAS: the table, the first DFA blob, a sparse DFA and the first range
/// table.
fn dfas(g: &mut Gen) {
    use fmt::dfa::{FLAG_SPARSE, FLAG_WIDE};
    fn entry0(d: &mut [u8]) -> &mut [u8] {
        nth_mut::<{ dfa_entry::LEN }>(&mut d[dfa_table::LEN..], 0, "DFA entry")
    }
    let mut parts = g.parts.clone();
    let d = parts.body(SectionKind::DFAS).clone();
    let table = DfaTableRecord::read(&d).expect("DFA table");
    let count = table.count as usize;
    let header = |i: usize| {
        let e = DfaEntryRecord::read_nth(&d[dfa_table::LEN..], i).expect("DFA entry");
        let h = DfaRecord::read(&d[e.offset as usize..]).expect("DFA header");
        let t = DfaEntryRecord::read_nth(&d[dfa_table::LEN..], count + h.range_table as usize)
            .expect("range table entry");
        let local = RangeTableRecord::read(&d[t.offset as usize..]).expect("range table");
        let sparse = (h.flags & FLAG_SPARSE != 0).then_some(h.sparse_len);
        let l = fmt::dfa_layout(
            h.state_count,
            u32::from(h.class_count),
            local.class_count,
            sparse,
        )
        .expect("DFA layout");
        (h, l)
    };
    // A field of DFA 0's header.
    fn dfa0(p: &mut Parts) -> &mut [u8] {
        p.dfa_blob(0)
    }
    let (h0, l0) = header(0);
    let len = get(
        entry0(&mut parts.body(SectionKind::DFAS).clone()),
        dfa_entry::LENGTH,
    );
    let b = g.with(|p| {
        set(
            entry0(p.body(SectionKind::DFAS)),
            dfa_entry::LENGTH,
            len - 4,
        )
    });
    g.add(
        "dfa-length-short",
        b,
        Expect::OneOf(&["bad-dfa", "non-zero-reserved"]),
    );
    let b = g.with(|p| set(dfa0(p), dfa_header::STATE_COUNT, 2));
    g.add("dfa-states-2", b, Expect::Kind("bad-dfa"));
    let b = g.with(|p| set(dfa0(p), dfa_header::STATE_COUNT, h0.state_count + 1));
    g.add("dfa-states-plus-1", b, Expect::Kind("bad-dfa"));
    let b = g.with(|p| set(dfa0(p), dfa_header::CLASS_COUNT, 0));
    g.add("dfa-classes-0", b, Expect::Kind("bad-dfa"));
    let b = g.with(|p| set(dfa0(p), dfa_header::CLASS_COUNT, 300));
    g.add("dfa-classes-300", b, Expect::Kind("bad-dfa"));
    let b = g.with(|p| set(dfa0(p), dfa_header::FLAGS, h0.flags | 0x80));
    g.add("dfa-flags-unknown", b, Expect::Kind("bad-dfa"));
    let b = g.with(|p| set(dfa0(p), dfa_header::FLAGS, h0.flags ^ FLAG_WIDE));
    g.add("dfa-flags-wide-wrong", b, Expect::Kind("bad-dfa"));
    let b = g.with(|p| set(dfa0(p), dfa_header::RESERVED, 1));
    g.add("dfa-reserved", b, Expect::Kind("non-zero-reserved"));
    let b = g.with(|p| set(dfa0(p), dfa_header::RANGE_TABLE, table.range_table_count));
    g.add("dfa-range-table-index", b, Expect::Kind("out-of-range"));
    if h0.flags & FLAG_SPARSE == 0 {
        let b = g.with(|p| set(dfa0(p), dfa_header::SPARSE_LEN, 4));
        g.add(
            "dfa-sparse-len-without-sparse",
            b,
            Expect::Kind("non-zero-reserved"),
        );
        // The first transition leads past the last state.
        let b = g.with(|p| dfa0(p)[l0.trans as usize] = 0xFF);
        g.add("dfa-transition-missing-state", b, Expect::Kind("bad-dfa"));
        // The limit cases: the last transition (the end of the parser's
        // last block) names state N, one past the last state.
        if let Ok(n) = u8::try_from(h0.state_count) {
            let b = g.with(|p| dfa0(p)[l0.eoi as usize - 1] = n);
            g.add("dfa-last-transition-to-state-n", b, Expect::Kind("bad-dfa"));
        }
    }
    let b = g.with(|p| dfa0(p)[l0.ascii as usize + usize::from(b'a')] = 0xFF);
    g.add("dfa-ascii-class-out-of-range", b, Expect::Kind("bad-dfa"));
    // The limit case: an ASCII class equal to the class count.
    if let Ok(k) = u8::try_from(h0.class_count) {
        let b = g.with(|p| dfa0(p)[l0.ascii as usize + usize::from(b'~')] = k);
        g.add("dfa-ascii-class-equals-count", b, Expect::Kind("bad-dfa"));
    }
    if h0.state_count % 8 != 0 {
        let b = g.with(|p| {
            let blob = dfa0(p);
            let last = blob.len() - 1;
            blob[last] |= 0x80;
        });
        g.add(
            "dfa-end-bits-past-last-state",
            b,
            Expect::Kind("non-zero-reserved"),
        );
    }
    // A DFA with sparse rows (the fixture has one: an anchored regex).
    let sparse = (0..count).find(|&i| header(i).0.flags & FLAG_SPARSE != 0);
    if let Some(i) = sparse {
        let (h, l) = header(i);
        let b = g.with(|p| set(p.dfa_blob(i), dfa_header::FLAGS, h.flags & !FLAG_SPARSE));
        g.add(
            "dfa-sparse-flag-cleared",
            b,
            Expect::OneOf(&["bad-dfa", "non-zero-reserved"]),
        );
        let b = g.with(|p| set(p.dfa_blob(i), dfa_header::SPARSE_LEN, h.sparse_len + 2));
        g.add("dfa-sparse-len-wrong", b, Expect::Kind("bad-dfa"));
        // The second row's offset (u16) no longer where the first row ends.
        let b = g.with(|p| {
            let at = l.trans as usize + 2;
            p.dfa_blob(i)[at] ^= 1;
        });
        g.add("dfa-sparse-row-offset", b, Expect::Kind("bad-dfa"));
        // The first row's count (after its default target) past the class count.
        let b = g.with(|p| {
            let at = l.rows as usize + l.width as usize;
            p.dfa_blob(i)[at] = 0xFF;
        });
        g.add("dfa-sparse-row-count", b, Expect::Kind("bad-dfa"));
        // The first row's default target past the last state.
        let b = g.with(|p| {
            let at = l.rows as usize;
            p.dfa_blob(i)[at] = 0xFF;
        });
        g.add(
            "dfa-sparse-default-missing-state",
            b,
            Expect::Kind("bad-dfa"),
        );
    }
    // The first range table.
    let b = g.with(|p| set(p.dfa_blob(count), range_table::RANGE_COUNT, 0));
    g.add("range-table-empty", b, Expect::Kind("bad-dfa"));
    let b = g.with(|p| set(p.dfa_blob(count), range_table::CLASS_COUNT, 0));
    g.add("range-table-classes-0", b, Expect::Kind("bad-dfa"));
    let b = g.with(|p| set(p.dfa_blob(count), range_table::RANGE_COUNT, 1 << 20));
    g.add("range-table-count-huge", b, Expect::Kind("bad-dfa"));
    // Entry 0 (first code point << 8 | class) must start at U+0080.
    let entry0_at = fmt::range_table_len(0).expect("entry 0") as usize;
    let b = g.with(|p| p.dfa_blob(count)[entry0_at + 1] ^= 1);
    g.add("range-table-first-not-0080", b, Expect::Kind("bad-dfa"));
    let b = g.with(|p| p.dfa_blob(count)[entry0_at] = 0xFF);
    g.add("range-table-class-out-of-range", b, Expect::Kind("bad-dfa"));
    let b = g.with(|p| set(p.body(SectionKind::DFAS), dfa_table::RESERVED, [1; 8]));
    g.add("dfa-table-reserved", b, Expect::Kind("non-zero-reserved"));
    let b = g.with(|p| {
        set(
            p.body(SectionKind::DFAS),
            dfa_table::RANGE_TABLE_COUNT,
            table.range_table_count + 1,
        )
    });
    g.add(
        "dfa-range-table-count-plus-1",
        b,
        Expect::OneOf(&["out-of-range", "truncated", "bad-dfa"]),
    );
    let b = g.with(|p| {
        set(
            entry0(p.body(SectionKind::DFAS)),
            dfa_entry::OFFSET,
            fmt::DFA_ALIGN / 2,
        )
    });
    g.add("dfa-offset-unaligned", b, Expect::Kind("out-of-range"));
    let b = g.with(|p| {
        set(
            entry0(p.body(SectionKind::DFAS)),
            dfa_entry::LENGTH,
            u32::MAX - 8,
        )
    });
    g.add("dfa-length-huge", b, Expect::Kind("limit-exceeded"));
    let b = g.with(|p| set(p.body(SectionKind::DFAS), dfa_table::COUNT, 0x2000_0000));
    g.add("dfa-count-huge", b, Expect::Kind("limit-exceeded"));
}

/// Writes entry `i` of the index array at `part` (an [`AutomatonLayout`]
/// offset) of the first automaton: u16 when `narrow`, else u32.
fn put_index(b: &mut [u8], part: u32, i: u32, narrow: bool, v: u32) {
    let w = if narrow { 2 } else { 4 };
    let at = prefilter::LEN + (part + i * w) as usize;
    if narrow {
        b[at..at + 2].copy_from_slice(&(v as u16).to_le_bytes());
    } else {
        b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }
}

/// PREFILTER: the first automaton's header, class map, dense rows, index
/// arrays, labels and depths; the lazy flag on an automaton with gates.
fn prefilter_automata(g: &mut Gen) {
    use fmt::automaton;
    fn auto0(p: &mut Parts) -> &mut [u8] {
        &mut p.body(SectionKind::PREFILTER)[prefilter::LEN..]
    }
    let (h, l) = {
        let mut p = g.parts.clone();
        let (_, h, l) = p.automaton0();
        (h, l)
    };
    let narrow = h.flags & fmt::AUTOMATON_FLAG_NARROW != 0;
    // Sets index-array entry `i` of `part`.
    let idx = |p: &mut Parts, part: fn(&AutomatonLayout) -> u32, i: u32, v: u32| {
        let (b, _, l) = p.automaton0();
        put_index(b, part(&l), i, narrow, v);
    };
    let b = g.with(|p| set(p.body(SectionKind::PREFILTER), prefilter::COUNT, 4));
    g.add("prefilter-count-4", b, Expect::Kind("limit-exceeded"));
    let b = g.with(|p| set(p.body(SectionKind::PREFILTER), prefilter::RESERVED, 1));
    g.add("prefilter-reserved", b, Expect::Kind("non-zero-reserved"));
    let b = g.with(|p| set(auto0(p), automaton::FIELD, FieldId::PROCESS_ID.0));
    g.add("prefilter-field-pid", b, Expect::Kind("bad-automaton"));
    let b = g.with(|p| set(auto0(p), automaton::STATE_COUNT, u32::MAX));
    g.add(
        "prefilter-state-count-huge",
        b,
        Expect::Kind("limit-exceeded"),
    );
    let b = g.with(|p| set(auto0(p), automaton::STATE_COUNT, h.state_count + 1));
    g.add(
        "prefilter-state-count-plus-1",
        b,
        Expect::OneOf(&[
            "bad-automaton",
            "bad-section-len",
            "truncated",
            "non-zero-reserved",
        ]),
    );
    let b = g.with(|p| set(auto0(p), automaton::CLASS_COUNT, 0));
    g.add("prefilter-classes-0", b, Expect::Kind("bad-automaton"));
    let b = g.with(|p| set(auto0(p), automaton::CLASS_COUNT, 257));
    g.add("prefilter-classes-257", b, Expect::Kind("bad-automaton"));
    let b = g.with(|p| set(auto0(p), automaton::DENSE_COUNT, 0));
    g.add("prefilter-dense-0", b, Expect::Kind("bad-automaton"));
    let b = g.with(|p| set(auto0(p), automaton::DENSE_COUNT, h.state_count + 1));
    g.add(
        "prefilter-dense-past-states",
        b,
        Expect::Kind("bad-automaton"),
    );
    let b = g.with(|p| set(auto0(p), automaton::FLAGS, h.flags | 0x100));
    g.add("prefilter-flags-unknown", b, Expect::Kind("invalid-value"));
    let b = g.with(|p| {
        set(
            auto0(p),
            automaton::FLAGS,
            h.flags ^ fmt::AUTOMATON_FLAG_NARROW,
        )
    });
    g.add(
        "prefilter-narrow-flipped",
        b,
        Expect::OneOf(&[
            "bad-automaton",
            "bad-section-len",
            "truncated",
            "non-zero-reserved",
            "out-of-range",
        ]),
    );
    let b = g.with(|p| set(auto0(p), automaton::RESERVED, [0, 0, 0, 1]));
    g.add(
        "prefilter-reserved-bytes",
        b,
        Expect::Kind("non-zero-reserved"),
    );
    // Class map: a class past the count; 'a' apart from 'A'.
    let b = g.with(|p| *p.automaton_byte(l.classes + 0xFF) = 0xFF);
    g.add(
        "prefilter-class-out-of-range",
        b,
        Expect::Kind("bad-automaton"),
    );
    let b = g.with(|p| {
        let upper = *p.automaton_byte(l.classes + u32::from(b'A'));
        *p.automaton_byte(l.classes + u32::from(b'a')) = if upper == 0 { 1 } else { 0 };
    });
    g.add(
        "prefilter-class-map-not-folded",
        b,
        Expect::Kind("bad-automaton"),
    );
    // Dense rows: a target past the states; the exit flag flipped.
    let b = g.with(|p| {
        let (b, _, l) = p.automaton0();
        let at = prefilter::LEN + l.dense as usize;
        b[at..at + 4].copy_from_slice(&h.state_count.to_le_bytes());
    });
    g.add(
        "prefilter-dense-missing-state",
        b,
        Expect::Kind("bad-automaton"),
    );
    let b = g.with(|p| *p.automaton_byte(l.dense + 3) ^= 0x80);
    g.add(
        "prefilter-dense-exit-flag",
        b,
        Expect::Kind("bad-automaton"),
    );
    // Index arrays.
    let b = g.with(|p| idx(p, |l| l.edge_start, 0, 1));
    g.add(
        "prefilter-edge-start-not-0",
        b,
        Expect::Kind("bad-automaton"),
    );
    let b = g.with(|p| idx(p, |l| l.edge_start, 1, 0));
    g.add(
        "prefilter-child-before-parent",
        b,
        Expect::Kind("bad-automaton"),
    );
    let b = g.with(|p| idx(p, |l| l.edge_start, h.state_count, 0));
    g.add("prefilter-edge-end-wrong", b, Expect::Kind("bad-automaton"));
    let b = g.with(|p| idx(p, |l| l.fail, 0, 1));
    g.add("prefilter-root-fail", b, Expect::Kind("bad-automaton"));
    let b = g.with(|p| idx(p, |l| l.fail, 3, 3));
    g.add("prefilter-fail-to-self", b, Expect::Kind("bad-automaton"));
    let b = g.with(|p| idx(p, |l| l.fail, 3, 0xFFFF));
    g.add(
        "prefilter-fail-out-of-range",
        b,
        Expect::Kind("bad-automaton"),
    );
    let b = g.with(|p| idx(p, |l| l.out_start, 1, h.output_count + 1));
    g.add(
        "prefilter-output-start-past-end",
        b,
        Expect::Kind("bad-automaton"),
    );
    let b = g.with(|p| idx(p, |l| l.out_start, 1, 1));
    g.add(
        "prefilter-root-outputs",
        b,
        Expect::OneOf(&["bad-automaton"]),
    );
    let b = g.with(|p| idx(p, |l| l.outputs, 0, 0xFFFF));
    g.add(
        "prefilter-output-atom-huge",
        b,
        Expect::Kind("out-of-range"),
    );
    // Labels: the root's first two edges swapped; a class past the count.
    let b = g.with(|p| {
        let (b, _, l) = p.automaton0();
        let at = prefilter::LEN + l.labels as usize;
        b.swap(at, at + 1);
    });
    g.add(
        "prefilter-labels-unsorted",
        b,
        Expect::Kind("bad-automaton"),
    );
    let b = g.with(|p| *p.automaton_byte(l.labels) = 0xFF);
    g.add(
        "prefilter-label-out-of-range",
        b,
        Expect::Kind("bad-automaton"),
    );
    let b = g.with(|p| *p.automaton_byte(l.depths) = 1);
    g.add("prefilter-root-depth", b, Expect::Kind("bad-automaton"));
    let b = g.with(|p| *p.automaton_byte(l.depths + 1) = 9);
    g.add("prefilter-depth-wrong", b, Expect::Kind("bad-automaton"));
    if l.end > l.depths_end {
        let b = g.with(|p| *p.automaton_byte(l.end - 1) = 1);
        g.add("prefilter-padding", b, Expect::Kind("non-zero-reserved"));
    }
    // An eager automaton made lazy while its outputs include gates.
    if h.flags & fmt::AUTOMATON_FLAG_LAZY == 0 {
        let b = g.with(|p| {
            set(
                auto0(p),
                automaton::FLAGS,
                h.flags | fmt::AUTOMATON_FLAG_LAZY,
            )
        });
        g.add(
            "prefilter-lazy-with-gates",
            b,
            Expect::Kind("bad-automaton"),
        );
    }
    let b = g.with(|p| {
        p.body(SectionKind::PREFILTER)
            .extend_from_slice(&[0; fmt::AUTOMATON_ALIGN as usize])
    });
    g.add(
        "prefilter-trailing",
        b,
        Expect::OneOf(&["bad-section-len", "truncated"]),
    );
}

/// The ALWAYS list.
fn always_list(g: &mut Gen) {
    let b = g.with(|p| {
        p.body(SectionKind::ALWAYS)
            .extend_from_slice(&fmt::AlwaysRecord { rule: 0 }.to_bytes())
    });
    g.add("always-extra-entry", b, Expect::Kind("bad-always-list"));
    let b = g.with(|p| p.body(SectionKind::ALWAYS).clear());
    g.add("always-empty", b, Expect::Kind("bad-always-list"));
    let b = g.with(|p| p.body(SectionKind::ALWAYS).push(0));
    g.add("always-len-odd", b, Expect::Kind("bad-section-len"));
}

/// Count × size overflows with the limits lifted, a misaligned buffer, and
/// the valid fixture itself.
fn overflow_and_alignment(g: &mut Gen) {
    let b = g.with(|p| set(p.body(SectionKind::DFAS), dfa_table::COUNT, 0x2000_0000));
    g.add_unlimited(
        "dfa-count-overflow",
        b,
        Expect::OneOf(&["overflow", "truncated"]),
    );
    let b = g.with(|p| {
        let a = &mut p.body(SectionKind::PREFILTER)[prefilter::LEN..];
        set(a, fmt::automaton::STATE_COUNT, 0x4000_0001);
        set(a, fmt::automaton::DENSE_COUNT, 0x4000_0000);
    });
    g.add_unlimited(
        "prefilter-states-overflow",
        b,
        Expect::OneOf(&["overflow", "truncated"]),
    );
    let b = g.header(|b| set(b, header::SECTION_COUNT, 0x1000_0000));
    g.add_unlimited(
        "section-count-overflow",
        b,
        Expect::OneOf(&["overflow", "truncated"]),
    );
    // Every value is read with byte-wise little-endian loads: any address
    // will do.
    g.out.push(Case {
        name: "misaligned-buffer-accepted".into(),
        bytes: g.base.clone(),
        expect: Expect::Valid,
        caps: g.caps,
        max_limits: false,
        misaligned: true,
    });
    g.add("valid-fixture", g.base.clone(), Expect::Valid);
}

fn parts_boundaries(base: &[u8]) -> Vec<usize> {
    let mut v = vec![header::LEN];
    let aligned = AlignedBytes::new(base);
    if let Ok(f) = channel_parser::parse(aligned.as_slice(), &Capabilities::SENSOR) {
        for s in f.sections() {
            for d in [0usize, 1, 4] {
                v.push(s.offset as usize + d);
                v.push((s.offset + s.len) as usize - d.min(s.len as usize));
            }
        }
    }
    v
}
