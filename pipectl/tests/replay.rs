//! End-to-end tests of `pipectl replay` and `pipectl diff` (backtesting).

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::{
    assert_no_panic, corpus, pipectl, root, text, tmp, REDSUN_EVTX, REDSUN_JSON, SIGMA_PIPE,
};

fn fixture(p: &str) -> String {
    s(&PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/backtest")
        .join(p))
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn json_out(o: &Output) -> Value {
    assert_no_panic(o);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o.stdout)))
}

/// Compiles the Sigma corpus + rules/ + a fixture release into `dir/name`.
fn compile(dir: &Path, name: &str, release: &str, seq: &str) -> String {
    let out = dir.join(name);
    let o = pipectl(&[
        "compile",
        &corpus(SIGMA_PIPE),
        &s(&root().join("rules")),
        &fixture(release),
        "-o",
        &s(&out),
        "--sequence",
        seq,
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    s(&out)
}

/// The `verdicts` object of a replay report where every event was evaluated.
fn verdicts(matched: u64, alert: u64, block: u64, no_match: u64) -> Value {
    json!({"matched": matched, "alert": alert, "block": block, "no_match": no_match,
        "not_evaluated": 0, "not_evaluated_by_reason": {}})
}

fn rule(report: &Value, id: u64) -> &Value {
    report["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("rule {id} not in report"))
}

#[test]
fn replay_of_the_corpus_event_alerts_with_the_redsun_rule() {
    let dir = tmp("replay", "corpus");
    let v1 = compile(&dir, "v1.sys", "v1", "41");
    let ev = corpus(REDSUN_JSON);
    let r = json_out(&pipectl(&["replay", &v1, &ev, "--json"]));
    assert_eq!(r["events"]["records_read"], 1);
    assert_eq!(r["events"]["pipe_events"], 1);
    assert_eq!(r["events"]["created"], 1);
    assert_eq!(r["verdicts"], verdicts(1, 1, 0, 0));
    let red = rule(&r, 9001);
    assert_eq!(red["events"], 1);
    assert_eq!(red["as_best"], 1);
    assert_eq!(red["would"], "alert");
    let ex = &red["examples"][0];
    assert_eq!(ex["pipe_name"], "\\REDSUN");
    assert_eq!(ex["image"], "C:\\Users\\xodih\\Downloads\\RedSun.exe");
    assert_eq!(ex["pid"], 15596);
    assert_eq!(ex["kind"], "create");
    assert!(ex["source"]
        .as_str()
        .unwrap()
        .ends_with("9b4e7c2a-3f6d-4a8b-b5e9-1c7d3f2e6a4b.json:record 1"));
    // Every other rule is listed with zero events.
    assert_eq!(
        r["rules"].as_array().unwrap().len(),
        r["channel"]["rules"].as_u64().unwrap() as usize
    );
    // The text report names the rule and the example.
    let o = pipectl(&["replay", &v1, &ev]);
    assert_eq!(o.status.code(), Some(0));
    let t = text(&o.stdout);
    assert!(
        t.contains("RedSun pipe") && t.contains("\"\\\\REDSUN\""),
        "{t}"
    );
    // --all lists the rules that matched nothing too.
    let o = pipectl(&["replay", &v1, &ev, "--all"]);
    let t = text(&o.stdout);
    assert!(
        t.contains("Credential dumping tool pipes") && !t.contains("--all lists them"),
        "{t}"
    );
    // Without the RedSun rule, the Sigma corpus alone does not match it.
    let plain = dir.join("sigma.sys");
    let o = pipectl(&["compile", &corpus(SIGMA_PIPE), "-o", &s(&plain)]);
    assert!(o.status.success());
    let r = json_out(&pipectl(&["replay", &s(&plain), &ev, "--json"]));
    assert_eq!(r["verdicts"]["matched"], 0);
}

/// Pipe names from the corpus lists: suspicious patterns (a `*` made concrete)
/// and benign exact names.
fn corpus_pipe_names() -> Vec<String> {
    let mut names = Vec::new();
    let csv = std::fs::read_to_string(corpus("data/pipe-names/suspicious.csv")).unwrap();
    for line in csv.lines().skip(1) {
        let name = line.split(',').next().unwrap_or("");
        if name.starts_with('\\') {
            names.push(name.replace('*', "1a2b").replace('?', "x"));
        }
    }
    let tsv = std::fs::read_to_string(corpus(
        "third_party/sysmon-modular/derived/benign_pipename_patterns.tsv",
    ))
    .unwrap();
    for line in tsv.lines() {
        let mut cols = line.split('\t');
        if cols.next() == Some("is") {
            if let Some(n) = cols.next() {
                names.push(n.to_string());
            }
        }
    }
    names
}

/// One JSON line per name, alternating ID 17 and 18 and the two record shapes,
/// an ID 1 record every 25 lines.
fn synthetic_jsonl(names: &[String]) -> (String, usize) {
    let mut out = String::new();
    let mut other = 0;
    for (i, n) in names.iter().enumerate() {
        let id = if i % 2 == 0 { 17 } else { 18 };
        let image = if i % 3 == 0 {
            "C:\\Users\\Public\\x.exe"
        } else {
            "C:\\Windows\\System32\\svchost.exe"
        };
        let v = if i % 4 < 2 {
            json!({"EventID": id, "PipeName": n, "Image": image, "ProcessId": 1000 + i})
        } else {
            json!({"Event": {"System": {"EventID": id}, "EventData": {"PipeName": n, "Image": image, "ProcessId": (1000 + i).to_string()}}})
        };
        out.push_str(&v.to_string());
        out.push('\n');
        if i % 25 == 0 {
            out.push_str(&json!({"EventID": 1, "Image": image}).to_string());
            out.push('\n');
            other += 1;
        }
    }
    (out, other)
}

#[test]
fn replay_of_synthetic_json_lines_agrees_with_pipectl_match_event_by_event() {
    let dir = tmp("replay", "synthetic");
    let v1 = compile(&dir, "v1.sys", "v1", "41");
    let mut names = corpus_pipe_names();
    names.push("\\REDSUN".into());
    assert!(names.len() > 300, "{}", names.len());
    let (jsonl, other) = synthetic_jsonl(&names);
    let all = dir.join("all.jsonl");
    std::fs::write(&all, &jsonl).unwrap();
    let r = json_out(&pipectl(&["replay", &v1, &s(&all), "--json"]));
    assert_eq!(r["events"]["pipe_events"], names.len());
    assert_eq!(r["events"]["records_read"], names.len() + other);
    assert_eq!(r["events"]["skipped_other_ids"], other);
    assert_eq!(r["events"]["skipped_by_id"]["1"], other);
    let matched = r["verdicts"]["matched"].as_u64().unwrap();
    assert!(
        matched > 20,
        "the known tool names of data/pipe-names/suspicious.csv should match Sigma rules: {matched}"
    );
    assert!(rule(&r, 9001)["events"].as_u64().unwrap() >= 1);

    // A deterministic sample, replayed and matched one by one with `pipectl match`.
    let sample: Vec<(usize, &String)> = names.iter().enumerate().step_by(7).take(60).collect();
    let sample_names: Vec<String> = sample.iter().map(|(_, n)| (*n).clone()).collect();
    let (sample_jsonl, _) = synthetic_jsonl(&sample_names);
    let sf = dir.join("sample.jsonl");
    std::fs::write(&sf, sample_jsonl).unwrap();
    let r = json_out(&pipectl(&[
        "replay",
        &v1,
        &s(&sf),
        "--json",
        "--examples",
        "0",
    ]));
    let mut expect_events: BTreeMap<u64, u64> = BTreeMap::new();
    let mut expect_best: BTreeMap<u64, u64> = BTreeMap::new();
    let mut expect_matched = 0;
    for (i, n) in sample_names.iter().enumerate() {
        let kind = if i % 2 == 0 { "create" } else { "connect" };
        let image = if i % 3 == 0 {
            "C:\\Users\\Public\\x.exe"
        } else {
            "C:\\Windows\\System32\\svchost.exe"
        };
        let pid = (1000 + i).to_string();
        let o = pipectl(&[
            "match", &v1, n, "--image", image, "--kind", kind, "--pid", &pid, "--json",
        ]);
        assert_no_panic(&o);
        let m: Value = serde_json::from_slice(&o.stdout).unwrap();
        for x in m["matched"].as_array().unwrap() {
            *expect_events.entry(x["id"].as_u64().unwrap()).or_default() += 1;
        }
        if let Some(b) = m["best"]["id"].as_u64() {
            *expect_best.entry(b).or_default() += 1;
            expect_matched += 1;
        }
    }
    assert_eq!(r["verdicts"]["matched"], expect_matched);
    for x in r["rules"].as_array().unwrap() {
        let id = x["id"].as_u64().unwrap();
        assert_eq!(
            x["events"].as_u64().unwrap(),
            expect_events.get(&id).copied().unwrap_or(0),
            "rule {id}"
        );
        assert_eq!(
            x["as_best"].as_u64().unwrap(),
            expect_best.get(&id).copied().unwrap_or(0),
            "rule {id}"
        );
    }
}

#[test]
fn replay_reads_a_json_array_and_a_directory() {
    let dir = tmp("replay", "array");
    let v1 = compile(&dir, "v1.sys", "v1", "41");
    let evdir = dir.join("logs");
    std::fs::create_dir_all(evdir.join("sub")).unwrap();
    let arr = json!([
        {"EventID": 17, "PipeName": "\\REDSUN"},
        {"Event": {"System": {"EventID": {"#text": "18"}}, "EventData": {"Data": [
            {"@Name": "PipeName", "#text": "\\lsadump"}, {"@Name": "ProcessId", "#text": "9"}]}}},
        {"winlog": {"event_id": 18, "event_data": {"PipeName": "\\postex_1"}}},
        {"EventID": 3, "Image": "x"}
    ]);
    std::fs::write(evdir.join("a.json"), arr.to_string()).unwrap();
    std::fs::write(
        evdir.join("sub/b.jsonl"),
        "{\"EventID\":17,\"PipeName\":\"\\\\x\"}\n",
    )
    .unwrap();
    std::fs::write(evdir.join("notes.txt"), "not an event file").unwrap();
    let r = json_out(&pipectl(&["replay", &v1, &s(&evdir), "--json"]));
    assert_eq!(
        r["events"]["files"].as_array().unwrap().len(),
        2,
        "{}",
        r["events"]
    );
    assert_eq!(r["events"]["pipe_events"], 4);
    assert_eq!(r["events"]["connected"], 2);
    assert_eq!(r["events"]["skipped_by_id"]["3"], 1);
    assert_eq!(r["verdicts"], verdicts(3, 2, 1, 1));
    assert_eq!(rule(&r, 3001)["examples"][0]["pid"], 9);
    assert_eq!(rule(&r, 3001)["would"], "block");
}

#[test]
fn diff_between_two_releases_shows_each_changed_verdict() {
    let dir = tmp("replay", "diff");
    let v1 = compile(&dir, "v1.sys", "v1", "41");
    let v2 = compile(&dir, "v2.sys", "v2", "42");
    let ev = [corpus(REDSUN_JSON), fixture("events.jsonl")];
    let mut args = vec!["diff", &v1, &v2, "--events", &ev[0], &ev[1]];
    args.push("--json");
    let d = json_out(&pipectl(&args));
    let sum = &d["summary"];
    assert_eq!(sum["pipe_events"], 8);
    assert_eq!(sum["newly_matched"], 1);
    assert_eq!(sum["no_longer_matched"], 1);
    assert_eq!(sum["action_changed"], 3);
    assert_eq!(sum["alert_to_block"], 3);
    assert_eq!(sum["block_to_alert"], 0);
    assert_eq!(sum["best_rule_changed"], 0);
    assert_eq!(sum["changed"], 5);
    assert_eq!(sum["unchanged"], 3);
    assert_eq!(sum["new_blocks"], 3);
    let groups = d["groups"].as_array().unwrap();
    let g = |c: &str| {
        groups
            .iter()
            .find(|g| g["change"] == c)
            .unwrap_or_else(|| panic!("{c}"))
    };
    assert_eq!(g("newly_matched")["new"]["id"], 9002);
    assert_eq!(g("newly_matched")["examples"][0]["pipe_name"], "\\lab_7");
    assert_eq!(g("no_longer_matched")["old"]["id"], 9003);
    assert_eq!(g("action_changed")["old"]["action"], "alert");
    assert_eq!(g("action_changed")["new"]["action"], "block");
    assert_eq!(g("action_changed")["events"], 3);
    assert_eq!(d["rules"]["added"][0]["id"], 9002);
    assert_eq!(d["rules"]["removed"][0]["id"], 9003);
    assert_eq!(d["rules"]["changed"][0]["new"]["action"], "block");

    // Text report; exit codes: 0 by default, 1 with a --fail-on-* that holds.
    let o = pipectl(&["diff", &v1, &v2, "--events", &ev[0], &ev[1]]);
    assert_eq!(o.status.code(), Some(0));
    let t = text(&o.stdout);
    assert!(
        t.contains("ACTION CHANGED: 3 event(s)") && t.contains("alert→block 3"),
        "{t}"
    );
    assert!(
        t.contains("NEWLY MATCHED: 1 event(s)") && t.contains("NO LONGER MATCHED: 1 event(s)"),
        "{t}"
    );
    for flag in ["--fail-on-change", "--fail-on-new-block"] {
        let o = pipectl(&["diff", &v1, &v2, "--events", &ev[0], &ev[1], flag]);
        assert_eq!(o.status.code(), Some(1), "{flag}");
    }
    // The same release against itself changes nothing.
    let o = pipectl(&[
        "diff",
        &v1,
        &v1,
        "--events",
        &ev[0],
        &ev[1],
        "--fail-on-change",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert!(text(&o.stdout).contains("no verdict changes"));
    // Changes without a new block: --fail-on-change fails, --fail-on-new-block passes.
    let lab = dir.join("lab.jsonl");
    std::fs::write(&lab, "{\"EventID\":17,\"PipeName\":\"\\\\lab_7\"}\n{\"EventID\":17,\"PipeName\":\"\\\\legacy_lab_2\"}\n").unwrap();
    let o = pipectl(&[
        "diff",
        &v1,
        &v2,
        "--events",
        &s(&lab),
        "--fail-on-new-block",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    let o = pipectl(&["diff", &v1, &v2, "--events", &s(&lab), "--fail-on-change"]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn malformed_event_input_names_the_record_and_never_panics() {
    let dir = tmp("replay", "bad");
    let v1 = compile(&dir, "v1.sys", "v1", "41");
    let cases: &[(&str, &str, &str)] = &[
        ("lines.jsonl", "{\"EventID\":17,\"PipeName\":\"\\\\a\"}\n{\"EventID\":18,\"PipeName\":\"\\\\b\"}\n{\"EventID\":17,\"PipeName\":\n", "lines.jsonl:line 3"),
        ("nopipe.jsonl", "{\"EventID\":17,\"PipeName\":\"\\\\a\"}\n{\"EventID\":17,\"Image\":\"x\"}\n", "line 2: event ID 17 without a PipeName"),
        ("pid.json", "[{\"EventID\":17,\"PipeName\":\"\\\\a\"},{\"EventID\":18,\"PipeName\":\"\\\\a\",\"ProcessId\":\"twelve\"}]", "pid.json:record 2: ProcessId"),
        ("noid.json", "{\"PipeName\":\"\\\\a\"}", "record 1: no EventID"),
        ("broken.json", "{\n  \"EventID\": 17,\n  \"PipeName\": \"\\\\a\"\n", "invalid JSON at line 4"),
        ("scalar.json", "[1, {\"EventID\":17,\"PipeName\":\"\\\\a\"}]", "record 1: not a JSON object"),
        ("binary.json", "\u{0}\u{1}\u{2}{", "binary.json"),
    ];
    for (name, body, expect) in cases {
        let f = dir.join(name);
        std::fs::write(&f, body).unwrap();
        let o = pipectl(&["replay", &v1, &s(&f)]);
        assert_no_panic(&o);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", text(&o.stdout));
        let err = text(&o.stderr);
        assert!(err.contains(expect), "{name}: {err}");
    }
    let f = dir.join("notutf8.json");
    std::fs::write(&f, [b'{', 0xff, 0xfe, b'}']).unwrap();
    let o = pipectl(&["replay", &v1, &s(&f)]);
    assert_no_panic(&o);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("not UTF-8 text at byte 1"),
        "{}",
        text(&o.stderr)
    );
    // --skip-bad goes on, counts and lists the bad records.
    let f = dir.join("mixed.jsonl");
    std::fs::write(&f, "{\"EventID\":17,\"PipeName\":\"\\\\REDSUN\"}\nnot json\n{\"EventID\":17}\n{\"EventID\":18,\"PipeName\":\"\\\\REDSUN\"}\n").unwrap();
    let r = json_out(&pipectl(&["replay", &v1, &s(&f), "--skip-bad", "--json"]));
    assert_eq!(r["events"]["records_read"], 4);
    assert_eq!(r["events"]["pipe_events"], 2);
    assert_eq!(r["events"]["bad"], 2);
    let bad = r["events"]["bad_records"].to_string();
    assert!(
        bad.contains("mixed.jsonl:line 2") && bad.contains("mixed.jsonl:line 3"),
        "{bad}"
    );
    assert_eq!(rule(&r, 9001)["events"], 2);
    // Missing file, invalid channel file.
    let o = pipectl(&["replay", &v1, &s(&dir.join("missing.json"))]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("missing.json"));
    let junk = dir.join("junk.sys");
    std::fs::write(&junk, b"not a channel file").unwrap();
    let o = pipectl(&["replay", &s(&junk), &fixture("events.jsonl")]);
    assert_no_panic(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("invalid"));
}

// ---------------------------------------------------------------------------
// EVTX. The `evtx` crate's package ships no .evtx samples, so the tests write
// their own: a one-chunk EVTX file (MS-EVEN6 layout: 4 KiB file header, 64 KiB
// chunk with a 512-byte header, records of plain BinXML without templates)
// holding Sysmon-shaped events, with the file and chunk CRC32s filled in.

const FILE_HEADER: usize = 4096;
const CHUNK: usize = 65536;
const CHUNK_HEADER: usize = 512;
const RECORD_HEADER: usize = 24;

/// BinXML written at chunk offset `base`.
struct BinXml {
    bytes: Vec<u8>,
    base: u32,
}

impl BinXml {
    fn pos(&self) -> u32 {
        self.base + self.bytes.len() as u32
    }
    fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.bytes.extend_from_slice(b);
        self
    }
    fn u16(&mut self, v: u16) -> &mut Self {
        self.raw(&v.to_le_bytes())
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.raw(&v.to_le_bytes())
    }
    fn utf16(&mut self, t: &str) -> &mut Self {
        for u in t.encode_utf16() {
            self.u16(u);
        }
        self
    }
    /// A name defined inline: the offset points just past itself.
    fn name(&mut self, n: &str) -> &mut Self {
        let at = self.pos() + 4;
        self.u32(at)
            .u32(0)
            .u16(0)
            .u16(n.encode_utf16().count() as u16)
            .utf16(n)
            .u16(0)
    }
    /// A string value.
    fn text(&mut self, t: &str) -> &mut Self {
        self.raw(&[0x05, 0x01])
            .u16(t.encode_utf16().count() as u16)
            .utf16(t)
    }
    /// `<name a="v"...>` (or `<name .../>` when `empty`).
    fn open(&mut self, n: &str, attrs: &[(&str, &str)], empty: bool) -> &mut Self {
        self.raw(&[if attrs.is_empty() { 0x01 } else { 0x41 }])
            .u32(0)
            .name(n);
        if !attrs.is_empty() {
            self.u32(0);
            for (i, (k, v)) in attrs.iter().enumerate() {
                let more = i + 1 < attrs.len();
                self.raw(&[if more { 0x46 } else { 0x06 }]).name(k).text(v);
            }
        }
        self.raw(&[if empty { 0x03 } else { 0x02 }])
    }
    fn leaf(&mut self, n: &str, attrs: &[(&str, &str)], t: &str) -> &mut Self {
        self.open(n, attrs, false).text(t).raw(&[0x04])
    }
}

/// A Sysmon-shaped event: (event id, [(data name, value)]).
type EvtxEvent<'a> = (u32, Vec<(&'a str, String)>);

/// The provider of the records `write_evtx` writes.
const SYSMON: &str = "Microsoft-Windows-Sysmon";

fn sysmon_record(x: &mut BinXml, provider: &str, id: u32, data: &[(&str, String)]) {
    x.raw(&[0x0f, 1, 1, 0]);
    x.open(
        "Event",
        &[(
            "xmlns",
            "http://schemas.microsoft.com/win/2004/08/events/event",
        )],
        false,
    );
    x.open("System", &[], false);
    if provider == SYSMON {
        x.open(
            "Provider",
            &[
                ("Name", SYSMON),
                ("Guid", "{5770385f-c22a-43e0-bf4c-06f5698ffbd9}"),
            ],
            true,
        );
    } else {
        x.open("Provider", &[("Name", provider)], true);
    }
    x.leaf("EventID", &[], &id.to_string());
    let channel = match provider {
        SYSMON => "Microsoft-Windows-Sysmon/Operational",
        "PipeSensor" => "Application",
        _ => "System",
    };
    x.leaf("Channel", &[], channel);
    x.leaf("Computer", &[], "lab-host");
    x.raw(&[0x04]);
    x.open("EventData", &[], false);
    for (k, v) in data {
        // An empty name: an unnamed item (a classic event source's
        // insertion string).
        if k.is_empty() {
            x.leaf("Data", &[], v);
        } else {
            x.leaf("Data", &[("Name", k)], v);
        }
    }
    x.raw(&[0x04, 0x04, 0x00]);
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn put(buf: &mut [u8], at: usize, b: &[u8]) {
    buf[at..at + b.len()].copy_from_slice(b);
}

fn write_evtx(events: &[EvtxEvent<'_>]) -> Vec<u8> {
    let with: Vec<(&str, EvtxEvent<'_>)> = events.iter().map(|e| (SYSMON, e.clone())).collect();
    write_evtx_of(&with)
}

/// An EVTX file of (provider, event) records.
fn write_evtx_of(events: &[(&str, EvtxEvent<'_>)]) -> Vec<u8> {
    let mut file = vec![0u8; FILE_HEADER + CHUNK];
    let n = events.len() as u64;
    put(&mut file, 0, b"ElfFile\0");
    put(&mut file, 24, &(n + 1).to_le_bytes()); // next record id
    put(&mut file, 32, &128u32.to_le_bytes()); // header size
    put(&mut file, 36, &1u16.to_le_bytes()); // minor version
    put(&mut file, 38, &3u16.to_le_bytes()); // major version
    put(&mut file, 40, &(FILE_HEADER as u16).to_le_bytes());
    put(&mut file, 42, &1u16.to_le_bytes()); // chunk count
    let c = crc32(&file[..120]);
    put(&mut file, 124, &c.to_le_bytes());
    let chunk = &mut file[FILE_HEADER..];
    let (mut at, mut last) = (CHUNK_HEADER, CHUNK_HEADER);
    for (i, (provider, (id, data))) in events.iter().enumerate() {
        let mut x = BinXml {
            bytes: Vec::new(),
            base: (at + RECORD_HEADER) as u32,
        };
        sysmon_record(&mut x, provider, *id, data);
        let size = RECORD_HEADER + x.bytes.len() + 4;
        assert!(at + size <= CHUNK, "fixture too big for one chunk");
        let rec = &mut chunk[at..at + size];
        put(rec, 0, &[0x2a, 0x2a, 0, 0]);
        put(rec, 4, &(size as u32).to_le_bytes());
        put(rec, 8, &(i as u64 + 1).to_le_bytes());
        put(rec, 16, &134_000_000_000_000_000u64.to_le_bytes()); // 2025-08-23
        put(rec, RECORD_HEADER, &x.bytes);
        put(rec, size - 4, &(size as u32).to_le_bytes());
        last = at;
        at += size;
    }
    put(chunk, 0, b"ElfChnk\0");
    for (off, v) in [(8, 1), (16, n), (24, 1), (32, n)] {
        put(chunk, off, &v.to_le_bytes());
    }
    put(chunk, 40, &128u32.to_le_bytes());
    put(chunk, 44, &(last as u32).to_le_bytes());
    put(chunk, 48, &(at as u32).to_le_bytes());
    let c = crc32(&chunk[CHUNK_HEADER..at]);
    put(chunk, 52, &c.to_le_bytes());
    let c = crc32(&[&chunk[..120], &chunk[128..CHUNK_HEADER]].concat());
    put(chunk, 124, &c.to_le_bytes());
    file
}

fn pipe_event(id: u32, pipe: &str, image: &str, pid: u32) -> EvtxEvent<'static> {
    (
        id,
        vec![
            ("RuleName", "-".into()),
            (
                "EventType",
                if id == 17 {
                    "CreatePipe"
                } else {
                    "ConnectPipe"
                }
                .into(),
            ),
            ("UtcTime", "2025-08-23 10:00:00.000".into()),
            (
                "ProcessGuid",
                "{0197231e-c424-69e1-c922-000000000800}".into(),
            ),
            ("ProcessId", pid.to_string()),
            ("PipeName", pipe.into()),
            ("Image", image.into()),
            ("User", "lab\\user".into()),
        ],
    )
}

fn evtx_events() -> Vec<EvtxEvent<'static>> {
    vec![
        pipe_event(
            17,
            "\\REDSUN",
            "C:\\Users\\xodih\\Downloads\\RedSun.exe",
            15596,
        ),
        pipe_event(18, "\\REDSUN", "C:\\Windows\\System32\\svchost.exe", 1200),
        (
            1,
            vec![
                ("Image", "C:\\Windows\\System32\\cmd.exe".into()),
                ("ProcessId", "77".into()),
            ],
        ),
        pipe_event(17, "\\lsadump", "C:\\Temp\\m.exe", 3004),
        pipe_event(18, "\\ShellIconCache", "C:\\Windows\\explorer.exe", 400),
    ]
}

/// The sensor's own Event Log records (source `PipeSensor`, Application
/// log, docs/events.md): unnamed insertion strings in Sysmon's order, `-`
/// for unknown values.
fn sensor_record(id: u32, pipe: &str, image: &str, pid: u32) -> EvtxEvent<'static> {
    let (_, named) = pipe_event(id, pipe, image, pid);
    (id, named.into_iter().map(|(_, v)| ("", v)).collect())
}

#[test]
fn replay_reads_the_sensors_own_event_log_records() {
    let dir = tmp("replay", "sensor-evtx");
    let v1 = compile(&dir, "v1.sys", "v1", "41");
    let app = dir.join("Application.evtx");
    std::fs::write(
        &app,
        write_evtx_of(&[
            ("PipeSensor", sensor_record(17, "\\REDSUN", "-", 15596)),
            (
                "PipeSensor",
                (110, vec![("", "41".into()), ("", "-".into())]),
            ),
            (
                "PipeSensor",
                sensor_record(18, "\\REDSUN", "C:\\x.exe", 1200),
            ),
            (
                "Microsoft-Windows-Kernel-Boot",
                (18, vec![("", "1".into())]),
            ),
        ]),
    )
    .unwrap();
    // The same records as Winlogbeat ships them (winlog.event_data.paramN).
    let beat = dir.join("winlogbeat-application.ndjson");
    std::fs::write(
        &beat,
        "{\"winlog\":{\"provider_name\":\"PipeSensor\",\"channel\":\"Application\",\"event_id\":17,\
         \"event_data\":{\"param1\":\"-\",\"param2\":\"CreatePipe\",\"param3\":\"2026-12-02 13:01:02.345\",\
         \"param4\":\"-\",\"param5\":\"4242\",\"param6\":\"\\\\REDSUN\",\"param7\":\"-\",\"param8\":\"-\"}}}\n",
    )
    .unwrap();
    let o = pipectl(&["replay", &v1, &s(&app), &s(&beat), "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let r = json_out(&o);
    assert_eq!(r["events"]["records_read"], 5, "{}", r["events"]);
    assert_eq!(r["events"]["pipe_events"], 3, "{}", r["events"]);
    assert_eq!(r["events"]["bad"], 0);
    assert_eq!(
        r["events"]["skipped_by_provider"],
        json!({"Microsoft-Windows-Kernel-Boot": 1})
    );
    // Every pipe event of the sensor is evaluated: the RedSun rule of v1.
    assert_eq!(r["verdicts"]["matched"], 3, "{}", r["verdicts"]);
}

#[test]
fn replay_reads_sysmon_events_from_evtx() {
    let dir = tmp("replay", "evtx");
    let v1 = compile(&dir, "v1.sys", "v1", "41");
    let f = dir.join("sysmon.evtx");
    std::fs::write(&f, write_evtx(&evtx_events())).unwrap();
    let r = json_out(&pipectl(&["replay", &v1, &s(&f), "--json"]));
    assert_eq!(r["events"]["records_read"], 5, "{}", r["events"]);
    assert_eq!(r["events"]["pipe_events"], 4);
    assert_eq!(
        (
            r["events"]["created"].clone(),
            r["events"]["connected"].clone()
        ),
        (json!(2), json!(2))
    );
    assert_eq!(r["events"]["skipped_by_id"]["1"], 1);
    assert_eq!(r["verdicts"], verdicts(3, 2, 1, 1));
    let red = rule(&r, 9001);
    assert_eq!(red["events"], 2);
    let ex = &red["examples"][0];
    assert_eq!(ex["pipe_name"], "\\REDSUN");
    assert_eq!(ex["image"], "C:\\Users\\xodih\\Downloads\\RedSun.exe");
    assert_eq!(ex["pid"], 15596);
    assert_eq!(ex["time"], "2025-08-23 10:00:00.000");
    assert!(
        ex["source"]
            .as_str()
            .unwrap()
            .contains("sysmon.evtx:record 1 (EventRecordID 1)"),
        "{ex}"
    );
    assert_eq!(red["examples"][1]["kind"], "connect");
    // The same events as JSON give the same verdicts (diff of a file with itself
    // over both inputs changes nothing, and the per-rule counts agree).
    let j = dir.join("same.jsonl");
    let lines: Vec<String> = evtx_events()
        .iter()
        .map(|(id, d)| {
            let mut m = serde_json::Map::new();
            m.insert("EventID".into(), json!(id));
            for (k, v) in d {
                m.insert((*k).into(), json!(v));
            }
            Value::Object(m).to_string()
        })
        .collect();
    std::fs::write(&j, lines.join("\n")).unwrap();
    let rj = json_out(&pipectl(&["replay", &v1, &s(&j), "--json"]));
    assert_eq!(rj["verdicts"], r["verdicts"]);
    for x in r["rules"].as_array().unwrap() {
        assert_eq!(rule(&rj, x["id"].as_u64().unwrap())["events"], x["events"]);
    }
}

#[test]
fn damaged_evtx_is_an_error_naming_the_record_never_a_panic() {
    let dir = tmp("replay", "evtx-bad");
    let v1 = compile(&dir, "v1.sys", "v1", "41");
    let good = write_evtx(&evtx_events());
    // Not an EVTX file at all, but named .evtx.
    let f = dir.join("text.evtx");
    std::fs::write(&f, "hello").unwrap();
    let o = pipectl(&["replay", &v1, &s(&f)]);
    assert_no_panic(&o);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("not an EVTX file"),
        "{}",
        text(&o.stderr)
    );
    // Record 2's BinXML damaged: its first token is no longer a fragment header.
    let second = FILE_HEADER + CHUNK_HEADER + {
        let size = u32::from_le_bytes(
            good[FILE_HEADER + CHUNK_HEADER + 4..][..4]
                .try_into()
                .unwrap(),
        );
        size as usize
    };
    let mut bad = good.clone();
    for b in &mut bad[second + RECORD_HEADER..second + RECORD_HEADER + 40] {
        *b = 0xee;
    }
    let f = dir.join("damaged.evtx");
    std::fs::write(&f, &bad).unwrap();
    let o = pipectl(&["replay", &v1, &s(&f)]);
    assert_no_panic(&o);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stdout));
    let err = text(&o.stderr);
    assert!(
        err.contains("damaged.evtx:record 2") && err.contains("--skip-bad"),
        "{err}"
    );
    let r = json_out(&pipectl(&["replay", &v1, &s(&f), "--json", "--skip-bad"]));
    assert_eq!(r["events"]["bad"], 1);
    assert_eq!(r["events"]["pipe_events"], 3);
    // A chunk whose header is gone (as in the slack of a dirty log): reported,
    // its records missing, never fatal.
    let mut nochunk = good.clone();
    nochunk[FILE_HEADER..FILE_HEADER + 8].copy_from_slice(&[0x11; 8]);
    let f = dir.join("nochunk.evtx");
    std::fs::write(&f, &nochunk).unwrap();
    let o = pipectl(&["replay", &v1, &s(&f), "--json"]);
    assert!(
        text(&o.stderr).contains("warning") && text(&o.stderr).contains("chunk"),
        "{}",
        text(&o.stderr)
    );
    let r = json_out(&o);
    assert_eq!(r["events"]["records_read"], 0);
    assert_eq!(
        r["events"]["evtx_chunks_unreadable"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Truncated at every 512th byte and a few odd offsets: an error or a
    // shorter replay, never a panic.
    let mut cuts: Vec<usize> = (0..good.len()).step_by(512).collect();
    cuts.extend([
        1,
        7,
        8,
        127,
        4095,
        4097,
        FILE_HEADER + 600,
        FILE_HEADER + 1000,
    ]);
    for cut in cuts {
        let f = dir.join("cut.evtx");
        std::fs::write(&f, &good[..cut]).unwrap();
        let o = pipectl(&["replay", &v1, &s(&f), "--json"]);
        assert_no_panic(&o);
        assert!(
            matches!(o.status.code(), Some(0) | Some(2)),
            "cut {cut}: {:?}",
            o.status
        );
    }
}

/// Real Windows-written Sysmon logs, when a directory of them is given in
/// PIPECTL_EVTX_SAMPLES (not shipped: e.g. the EfsPotato sample of
/// sbousseaden/EVTX-ATTACK-SAMPLES). Skipped otherwise.
#[test]
fn replay_real_evtx_samples_if_available() {
    let Ok(samples) = std::env::var("PIPECTL_EVTX_SAMPLES") else {
        eprintln!("PIPECTL_EVTX_SAMPLES not set: skipped");
        return;
    };
    let dir = tmp("replay", "real");
    let v1 = compile(&dir, "v1.sys", "v1", "41");
    let r = json_out(&pipectl(&["replay", &v1, &samples, "--json"]));
    assert!(
        r["events"]["records_read"].as_u64().unwrap() > 0,
        "{}",
        r["events"]
    );
    assert_eq!(r["events"]["bad"], 0);
    let has_efs = std::fs::read_dir(&samples).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .contains("EfsPotato")
    });
    if has_efs {
        let hits = r["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"].as_str().unwrap().contains("EfsPotato"))
            .unwrap();
        assert!(hits["events"].as_u64().unwrap() > 0, "{hits}");
    }
}

/// A copy of `from` (a directory tree) under `to`.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.path().is_dir() {
            copy_tree(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

/// Rule ids of the Sigma rules these events hit (the first 8 hex digits of
/// their UUIDs).
const CS_RULE: u64 = 0xd560_1f8c;
const REMCOM_RULE: u64 = 0xd36f_87ea;
const PAEXEC_RULE: u64 = 0xf645_1de4;
const CSEXEC_RULE: u64 = 0xf318_b911;
const CRED_DUMP_RULE: u64 = 0x961d_0ba2;

/// Every input shape replay reads, hand-written in the shape each exporter
/// produces (pipectl/tests/fixtures/logs/), each mixing Sysmon 17/18 with
/// records of other providers that use the same IDs and other IDs.
#[test]
fn each_log_shape_counts_only_sysmon_17_18_as_pipe_events() {
    let dir = tmp("replay", "shapes");
    let v1 = compile(&dir, "v1.sys", "v1", "41");
    // (file, pipe events, other providers' 17/18 by provider, other IDs,
    //  anonymous pipes, rules that must match)
    type Expect = (&'static str, u64, Value, Value, u64, &'static [u64]);
    let table: [Expect; 9] = [
        (
            "evtx_dump/Microsoft-Windows-Sysmon%4Operational.json",
            3,
            json!({}),
            json!({"1": 1}),
            1,
            &[],
        ),
        (
            "evtx_dump/System.json",
            0,
            json!({"BTHUSB": 1, "Microsoft-Windows-Kernel-Boot": 1}),
            json!({"7045": 1}),
            0,
            &[],
        ),
        (
            "xmltodict/sysmon6-and-system.json",
            2,
            json!({"Microsoft-Windows-Kernel-Boot": 1}),
            json!({}),
            0,
            &[CRED_DUMP_RULE],
        ),
        (
            "winlogbeat/winlogbeat-8.ndjson",
            2,
            json!({"Microsoft-Windows-Kernel-Boot": 1}),
            json!({"4624": 1}),
            0,
            &[CS_RULE],
        ),
        (
            "elastic/search-response.json",
            1,
            json!({"Microsoft-Windows-Kernel-Boot": 1}),
            json!({}),
            0,
            &[CS_RULE],
        ),
        (
            "splunk/export.json",
            2,
            json!({"Microsoft-Windows-Kernel-Boot": 1}),
            json!({"4688": 1}),
            0,
            &[REMCOM_RULE],
        ),
        (
            "sentinel/event-table.json",
            2,
            json!({"Microsoft-Windows-Kernel-Boot": 1}),
            json!({}),
            0,
            &[PAEXEC_RULE],
        ),
        (
            "sentinel/log-analytics-api.json",
            2,
            json!({}),
            json!({}),
            1,
            &[PAEXEC_RULE],
        ),
        (
            "flat/nxlog.jsonl",
            1,
            json!({"Microsoft-Windows-Kernel-Boot": 1}),
            json!({}),
            0,
            &[CSEXEC_RULE],
        ),
    ];
    for (file, pipes, providers, ids, anonymous, rules) in table {
        let path = s(&PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/logs")
            .join(file));
        let o = pipectl(&["replay", &v1, &path, "--json"]);
        let r = json_out(&o);
        let e = &r["events"];
        assert_eq!(e["pipe_events"], pipes, "{file}: {e}");
        assert_eq!(e["skipped_by_provider"], providers, "{file}: {e}");
        assert_eq!(e["skipped_by_id"], ids, "{file}: {e}");
        assert_eq!(e["bad"], 0, "{file}: {e}");
        assert_eq!(
            r["verdicts"]["not_evaluated"], anonymous,
            "{file}: {}",
            r["verdicts"]
        );
        for &id in rules {
            let hit = rule(&r, id);
            assert!(
                hit["events"].as_u64().unwrap() >= 1,
                "{file}: rule {id:#x}: {hit}"
            );
            // The example shows the event as recorded: name, image and pid read
            // from the shape's own fields.
            let ex = &hit["examples"][0];
            assert!(
                ex["pipe_name"].as_str().unwrap().starts_with('\\'),
                "{file}: {ex}"
            );
            assert!(
                ex["image"].as_str().unwrap().ends_with(".exe"),
                "{file}: {ex}"
            );
            assert!(ex["pid"].as_u64().unwrap() > 4, "{file}: {ex}");
        }
    }
}

/// The done-when of issue 12: a mixed directory of real-shaped logs (every
/// JSON shape, a generated EVTX with other providers' IDs 17/18 and an
/// old-schema Sysmon record, and SigmaHQ's real RedSun EVTX) replays with
/// exit 0 and counts only Sysmon 17/18 as pipe events.
#[test]
fn replay_over_a_mixed_directory_of_real_shaped_logs() {
    let dir = tmp("replay", "mixed");
    let v1 = compile(&dir, "v1.sys", "v1", "41");
    let logs = dir.join("logs");
    copy_tree(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/logs"),
        &logs,
    );
    let evtx = logs.join("evtx");
    std::fs::create_dir_all(&evtx).unwrap();
    std::fs::copy(
        corpus(REDSUN_EVTX),
        evtx.join("9b4e7c2a-3f6d-4a8b-b5e9-1c7d3f2e6a4b.evtx"),
    )
    .unwrap();
    // A System log with another provider's 17 and 18, and an old Sysmon (6.x)
    // record: no RuleName, no EventType, no User.
    let system = write_evtx_of(&[
        (
            "Microsoft-Windows-Kernel-Boot",
            (18, vec![("EntryCount", "1".into())]),
        ),
        ("BTHUSB", (18, vec![])),
        (
            "Microsoft-Windows-Kernel-General",
            (17, vec![("Reason", "2".into())]),
        ),
        (
            "Service Control Manager",
            (7036, vec![("param1", "Sysmon".into())]),
        ),
        (
            SYSMON,
            (
                17,
                vec![
                    ("UtcTime", "2017-10-24 13:05:52.702".into()),
                    (
                        "ProcessGuid",
                        "{a1b2c3d4-3a30-59ef-0000-0010d5e80a00}".into(),
                    ),
                    ("ProcessId", "3316".into()),
                    ("PipeName", "\\cachedump".into()),
                    ("Image", "C:\\Temp\\cd.exe".into()),
                ],
            ),
        ),
    ]);
    std::fs::write(evtx.join("System.evtx"), system).unwrap();
    let o = pipectl(&["replay", &v1, &s(&logs), "--json"]);
    let r = json_out(&o);
    let e = &r["events"];
    assert_eq!(e["files"].as_array().unwrap().len(), 11, "{e}");
    assert_eq!(e["records_read"], 27 + 5 + 1, "{e}");
    assert_eq!(e["pipe_events"], 15 + 1 + 1, "{e}");
    assert_eq!(
        (e["created"].clone(), e["connected"].clone()),
        (json!(12), json!(5))
    );
    assert_eq!(
        e["skipped_by_provider"],
        json!({"BTHUSB": 2, "Microsoft-Windows-Kernel-Boot": 8, "Microsoft-Windows-Kernel-General": 1})
    );
    assert_eq!(e["skipped_other_providers"], 11);
    assert_eq!(
        e["skipped_by_id"],
        json!({"1": 1, "4624": 1, "4688": 1, "7036": 1, "7045": 1})
    );
    assert_eq!(e["bad"], 0);
    let v = &r["verdicts"];
    assert_eq!(v["not_evaluated_by_reason"], json!({"anonymous_pipe": 2}));
    assert_eq!(
        v["matched"].as_u64().unwrap() + v["no_match"].as_u64().unwrap() + 2,
        17
    );
    // The old-schema EVTX record and the real RedSun EVTX are read and matched.
    assert!(rule(&r, CRED_DUMP_RULE)["events"].as_u64().unwrap() >= 3);
    let red = rule(&r, 9001);
    assert_eq!(red["events"], 1);
    assert!(red["examples"][0]["source"]
        .as_str()
        .unwrap()
        .contains("9b4e7c2a-3f6d-4a8b-b5e9-1c7d3f2e6a4b.evtx:record 1"));
    // The text report says what was skipped and why.
    let t = text(&pipectl(&["replay", &v1, &s(&logs)]).stdout);
    assert!(
        t.contains("11 ID 17/18 records of other providers skipped (BTHUSB: 2, Microsoft-Windows-Kernel-Boot: 8, Microsoft-Windows-Kernel-General: 1)")
            && t.contains("2 not evaluated (anonymous pipe: 2)")
            && t.contains(", 0 bad"),
        "{t}"
    );
}
