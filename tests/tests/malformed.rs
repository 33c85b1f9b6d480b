//! The malformed corpus: a valid file truncated at every byte offset, every
//! header field changed, sections out of bounds and overlapping, count × size
//! overflow, zero and huge counts, invalid UTF-8, duplicate ids, the
//! field-not-supplied (Channel File 291) case, corrupt programs, automata and
//! DFAs. Each is rejected with its expected error variant.

use channel_format::FieldId;
use test_kit::malformed::{corpus, Expect};

#[test]
fn every_malformed_file_is_rejected_with_the_expected_error() {
    let cases = corpus(true);
    let fixture_len = cases
        .iter()
        .find(|c| c.name == "valid-fixture")
        .map(|c| c.bytes.len())
        .unwrap();
    // Every truncation offset is present.
    let truncations = cases
        .iter()
        .filter(|c| c.name.starts_with("truncate-0") || c.name.starts_with("truncate-1"))
        .count();
    assert_eq!(truncations, fixture_len, "one truncation per byte offset");
    let rejected = cases.iter().filter(|c| c.expect != Expect::Valid).count();
    assert!(rejected > 2 * fixture_len - 64);
    let failures: Vec<String> = cases.iter().filter_map(|c| c.check().err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn channel_file_291_case_names_the_rule_and_the_field() {
    let case = corpus(false)
        .into_iter()
        .find(|c| c.name == "cf291-rule-reads-field-21")
        .unwrap();
    let aligned = pipe_compiler::AlignedBytes::new(&case.bytes);
    let err = channel_parser::parse(aligned.as_slice(), &case.caps).unwrap_err();
    match err {
        channel_parser::ParseError::FieldNotSupplied {
            rule_id,
            rule_index,
            field,
            ..
        } => {
            assert_eq!((rule_id, rule_index, field.0), (10, 0, 21));
        }
        other => panic!("expected FieldNotSupplied, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("rule 10") && text.contains("21") && text.contains("does not supply"),
        "{text}"
    );
}

#[test]
fn every_byte_flip_of_a_valid_file_is_handled() {
    // Not every flip is invalid (a flipped sequence number is a valid file):
    // the property is that parse never panics and that an accepted file can
    // be matched against without panicking.
    let base = test_kit::malformed::fixture_file();
    let mut scratch = channel_parser::Scratch::new();
    let mut accepted = 0;
    for i in 0..base.len() {
        for mask in [0x01u8, 0x80, 0xFF] {
            let mut b = base.clone();
            b[i] ^= mask;
            let aligned = pipe_compiler::AlignedBytes::new(&b);
            if let Ok(f) =
                channel_parser::parse(aligned.as_slice(), &channel_parser::Capabilities::SENSOR)
            {
                accepted += 1;
                for name in [
                    "\\postex_1",
                    "\\PSEXESVC-x",
                    "\\mojo.5688.8052.aa",
                    "\\msagent_abcx",
                    "\\lsadump",
                    "",
                ] {
                    let ev = channel_parser::Event {
                        pipe_name: channel_parser::Text::Utf8(name),
                        image: Some(channel_parser::Text::Utf8("C:\\a.exe")),
                        pid: 4242,
                        kind: channel_parser::EventKind::Connect,
                        user: Some(channel_parser::Text::Utf8("S-1-5-18")),
                    };
                    let _ = f.evaluate(&ev, &mut scratch);
                }
            }
        }
    }
    // Flips in the sequence number, optional flags, names, severities etc. are valid.
    assert!(accepted > 0 && accepted < base.len() * 3);
}

/// The cases on format 2's parts exist: some are taken only when the
/// fixture has the part (a sparse DFA, an eager automaton with gates, a
/// lazy one), so a fixture change must not drop them silently.
#[test]
fn format_2_parts_are_covered() {
    let cases = corpus(false);
    for name in [
        "header-major-1",
        "dfa-states-plus-1",
        "dfa-flags-wide-wrong",
        "dfa-range-table-index",
        "dfa-sparse-len-without-sparse",
        "dfa-transition-missing-state",
        "dfa-ascii-class-out-of-range",
        "dfa-sparse-flag-cleared",
        "dfa-sparse-row-offset",
        "dfa-sparse-row-count",
        "dfa-sparse-default-missing-state",
        "range-table-empty",
        "range-table-first-not-0080",
        "range-table-class-out-of-range",
        "prefilter-class-map-not-folded",
        "prefilter-dense-exit-flag",
        "prefilter-dense-missing-state",
        "prefilter-child-before-parent",
        "prefilter-fail-to-self",
        "prefilter-output-atom-huge",
        "prefilter-lazy-with-gates",
        "glob-bad-escape",
        "glob-not-folded",
        "glob-trailing-backslash",
        "glob-lower-case-letter",
        "dfa-last-transition-to-state-n",
        "dfa-ascii-class-equals-count",
        "prefilter-narrow-flipped",
        "misaligned-buffer-accepted",
    ] {
        assert!(cases.iter().any(|c| c.name == name), "no case {name}");
    }
    // The fixture has an eager automaton (pipe name) and two lazy ones
    // (image, user), and a sparse DFA.
    let fixture = cases.iter().find(|c| c.name == "valid-fixture").unwrap();
    let aligned = pipe_compiler::AlignedBytes::new(&fixture.bytes);
    let f = channel_parser::parse(aligned.as_slice(), &fixture.caps).unwrap();
    let shape: Vec<(FieldId, bool)> = f.prefilter_shape().map(|s| (s.0, s.4)).collect();
    assert_eq!(
        shape,
        [
            (FieldId::PIPE_NAME, false),
            (FieldId::IMAGE, true),
            (FieldId::USER, true)
        ],
        "pipe name eager, image and user lazy"
    );
    assert!(f.rules().flat_map(|r| r.atoms()).any(|a| a.gate()));
}
