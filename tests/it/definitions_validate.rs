//! Every `validate` error names the file, the item and, for the pipeline file, line and column.

use crate::common;

use common::*;

const HR: &str = "month,unit,person,gender,hours,sick\n2024-01-01,A1,p1,K,10,1\n";

fn ok_indicator() -> String {
    indicator("sick", "numerator = \"sum(sick)\"\ngrains = [\"month\"]")
}

/// Runs validate and returns (exit code, message); panics if validation passes.
fn problems(f: &Fixture) -> (i32, String) {
    match styrkort::validate(&f.path("pipeline.toml")) {
        Ok(_) => panic!("validation passed, expected an error"),
        Err(e) => (e.exit_code(), e.to_string()),
    }
}

/// The 1-based line of the first line containing `needle` in a written file.
fn line_of(f: &Fixture, file: &str, needle: &str) -> usize {
    let text = std::fs::read_to_string(f.path(file)).unwrap();
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("'{needle}' not in {file}"))
        + 1
}

fn with_body(body: &str) -> Fixture {
    let f = Fixture::new();
    f.file("hr.csv", HR);
    f.pipeline(&(HR_SOURCE.to_string() + body));
    f
}

fn expect(f: &Fixture, needle_in_file: (&str, &str), item: &str, message: &str) {
    let (code, text) = problems(f);
    assert_eq!(code, 2, "{text}");
    let (file, needle) = needle_in_file;
    let line = line_of(f, file, needle);
    let expected_prefix = format!("{}:{line}:", f.path(file).display());
    let hit = text
        .lines()
        .find(|l| l.contains(message) && l.contains(item))
        .unwrap_or_else(|| panic!("no line with '{message}' in:\n{text}"));
    assert!(
        hit.starts_with(&expected_prefix),
        "expected {expected_prefix}… in: {hit}"
    );
    assert!(hit.contains(item), "expected item {item} in: {hit}");
}

#[test]
fn a_valid_pipeline_passes() {
    let f = with_body(&ok_indicator());
    let v = styrkort::validate(&f.path("pipeline.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((v.indicators, v.goals, v.units), (1, 1, 6));
}

#[test]
fn an_expression_using_an_undeclared_column() {
    let f = with_body(&indicator(
        "sick",
        "numerator = \"sum(sick_hourz)\"\ngrains = [\"month\"]",
    ));
    expect(
        &f,
        ("pipeline.toml", "sum(sick_hourz)"),
        "indicator 'sick'",
        "numerator uses column 'sick_hourz', which source 'hr' does not declare",
    );
}

#[test]
fn an_expression_with_a_syntax_error() {
    let f = with_body(&indicator(
        "sick",
        "numerator = \"sum(sick)\"\nfilter = \"gender = = 'K'\"\ngrains = [\"month\"]",
    ));
    expect(
        &f,
        ("pipeline.toml", "gender = = 'K'"),
        "indicator 'sick'",
        "filter 'gender = = 'K'' does not compile",
    );
}

#[test]
fn a_goal_naming_an_unknown_indicator() {
    let body = ok_indicator().replace(
        "indicators = [\"sick\"]",
        "indicators = [\"sick\", \"nope\"]",
    );
    let f = with_body(&body);
    expect(
        &f,
        ("pipeline.toml", "\"nope\""),
        "goal 'goal_sick'",
        "unknown indicator 'nope'",
    );
}

#[test]
fn an_indicator_that_measures_no_goal() {
    let body = ok_indicator().replace("indicators = [\"sick\"]", "indicators = []");
    let f = with_body(&body);
    expect(
        &f,
        ("pipeline.toml", "id = \"sick\""),
        "indicator 'sick'",
        "indicator measures no goal",
    );
}

#[test]
fn duplicate_indicator_ids() {
    let body = ok_indicator()
        + "[[indicators]]\nid = \"sick\" # again\nname = \"again\"\nsource = \"hr\"\npolarity = \"neutral\"\nnumerator = \"count(*)\"\ngrains = [\"month\"]\n";
    let f = with_body(&body);
    expect(
        &f,
        ("pipeline.toml", "# again"),
        "indicator 'sick'",
        "duplicate indicator id",
    );
}

#[test]
fn an_unknown_source() {
    let body = ok_indicator().replace("source = \"hr\"", "source = \"hr2\"");
    let f = with_body(&body);
    expect(
        &f,
        ("pipeline.toml", "source = \"hr2\""),
        "indicator 'sick'",
        "unknown source 'hr2'",
    );
}

#[test]
fn a_goal_owner_or_scope_that_is_not_an_org_unit() {
    let body = ok_indicator()
        .replace("owner = \"K\"", "owner = \"Q\"")
        .replace(
            "grains = [\"month\"]",
            "grains = [\"month\"]\nscope = \"ZZ\"",
        );
    let f = with_body(&body);
    expect(
        &f,
        ("pipeline.toml", "owner = \"Q\""),
        "goal 'goal_sick'",
        "owner 'Q' is not an org unit",
    );
    expect(
        &f,
        ("pipeline.toml", "scope = \"ZZ\""),
        "indicator 'sick'",
        "scope 'ZZ' is not an org unit",
    );
}

#[test]
fn a_toml_syntax_error_and_an_unknown_key_point_at_their_line() {
    let f = with_body(
        &ok_indicator().replace("grains = [\"month\"]", "grains = [\"month\"\nnumerater = 1"),
    );
    let (code, text) = problems(&f);
    assert_eq!(code, 2);
    let line = line_of(&f, "pipeline.toml", "numerater");
    assert!(
        text.contains(&format!("\n{}:{line}:", f.path("pipeline.toml").display())),
        "{text}"
    );

    let f = with_body(&ok_indicator().replace(
        "grains = [\"month\"]",
        "grains = [\"month\"]\nnumerater = \"x\"",
    ));
    let (code, text) = problems(&f);
    assert_eq!(code, 2);
    let line = line_of(&f, "pipeline.toml", "numerater");
    assert!(text.contains(&format!("pipeline.toml:{line}:")), "{text}");
    assert!(text.contains("numerater"), "{text}");
}

#[test]
fn an_unknown_grain_is_rejected() {
    let f = with_body(&indicator(
        "sick",
        "numerator = \"sum(sick)\"\ngrains = [\"week\"]",
    ));
    let (code, text) = problems(&f);
    assert_eq!(code, 2);
    assert!(text.contains("week"), "{text}");
    let line = line_of(&f, "pipeline.toml", "\"week\"");
    assert!(text.contains(&format!("pipeline.toml:{line}:")), "{text}");
}

fn with_org(org: &str) -> Fixture {
    let f = Fixture::new();
    f.file("hr.csv", HR);
    f.file("org.csv", org);
    f.pipeline(&(HR_SOURCE.to_string() + &ok_indicator()));
    f
}

#[test]
fn duplicate_org_unit_ids() {
    let f = with_org(&(ORG.to_string() + "A1,Again,A,enhet\n"));
    expect(
        &f,
        ("org.csv", "A1,Again"),
        "unit 'A1'",
        "duplicate unit id (first on line 4)",
    );
}

#[test]
fn an_orphan_org_unit() {
    let f = with_org(&(ORG.to_string() + "C1,Lost,C,enhet\n"));
    expect(
        &f,
        ("org.csv", "C1,Lost"),
        "unit 'C1'",
        "parent 'C' is not a unit in the file (orphan)",
    );
}

#[test]
fn a_cycle_in_the_org_tree() {
    let f = with_org(&(ORG.to_string() + "X,X,Y,enhet\nY,Y,X,enhet\n"));
    expect(
        &f,
        ("org.csv", "X,X,Y"),
        "unit 'X'",
        "unit is its own ancestor (cycle in parent_id)",
    );
    expect(
        &f,
        ("org.csv", "Y,Y,X"),
        "unit 'Y'",
        "unit is its own ancestor (cycle in parent_id)",
    );
}

#[test]
fn overlapping_mapping_validity() {
    let f = Fixture::new();
    f.file("hr.csv", HR);
    f.file(
        "mapping.csv",
        "source,code,unit_id,valid_from,valid_to\nhr,1,A1,,2024-03-31\nhr,1,A2,2024-03-01,\n",
    );
    f.pipeline(&(HR_SOURCE.to_string() + &ok_indicator()));
    expect(
        &f,
        ("mapping.csv", "hr,1,A2"),
        "code '1' of source 'hr'",
        "validity overlaps the entry on line 2",
    );
}

#[test]
fn a_mapping_to_an_unknown_unit() {
    let f = Fixture::new();
    f.file("hr.csv", HR);
    f.file(
        "mapping.csv",
        "source,code,unit_id,valid_from,valid_to\nhr,1,NOPE,,\n",
    );
    f.pipeline(&(HR_SOURCE.to_string() + &ok_indicator()));
    expect(
        &f,
        ("mapping.csv", "NOPE"),
        "code '1'",
        "column 'unit_id': unknown org unit 'NOPE'",
    );
}

#[test]
fn a_source_file_missing_a_declared_column() {
    let f = Fixture::new();
    f.file(
        "hr.csv",
        "month,unit,person,gender,hours\n2024-01-01,A1,p1,K,10\n",
    );
    f.pipeline(&(HR_SOURCE.to_string() + &ok_indicator()));
    let err = styrkort::validate(&f.path("pipeline.toml"))
        .err()
        .expect("must fail");
    assert_eq!(err.exit_code(), 1);
    let text = err.to_string();
    assert!(
        text.contains("hr.csv: missing column(s) sick declared by source 'hr'"),
        "{text}"
    );
}

#[test]
fn a_second_root_is_a_blank_parent_id_unless_declared() {
    // B's parent_id blanked by mistake: B and B1 would silently leave the kommun.
    let f = with_org(&ORG.replace("B,Nämnd B,K,namnd", "B,Nämnd B,,namnd"));
    expect(
        &f,
        ("org.csv", "B,Nämnd B"),
        "unit 'B'",
        "no parent_id, but 'K' (line 2) is already the tree's root: a parent_id left blank by mistake?",
    );
    // Declared, two roots are fine.
    f.pipeline(&(format!("roots = [\"K\", \"B\"]\n{HR_SOURCE}") + &ok_indicator()));
    styrkort::validate(&f.path("pipeline.toml")).unwrap_or_else(|e| panic!("{e}"));
    // A declared root list must match the file.
    f.pipeline(&(format!("roots = [\"K\"]\n{HR_SOURCE}") + &ok_indicator()));
    expect(
        &f,
        ("org.csv", "B,Nämnd B"),
        "unit 'B'",
        "no parent_id, but it is not among the declared roots (K)",
    );
    f.pipeline(&(format!("roots = [\"K\", \"B\", \"A\"]\n{HR_SOURCE}") + &ok_indicator()));
    let (_, text) = problems(&f);
    assert!(text.contains("declared root 'A' has a parent_id"), "{text}");
}

#[test]
fn a_mapping_entry_for_an_undefined_source_is_a_typo() {
    let f = Fixture::new();
    f.file("hr.csv", HR);
    f.file(
        "mapping.csv",
        "source,code,unit_id,valid_from,valid_to\nhr,1,A1,,\nhr_tiem,2,A2,,\n",
    );
    f.pipeline(&(HR_SOURCE.to_string() + &ok_indicator()));
    expect(
        &f,
        ("mapping.csv", "hr_tiem"),
        "source 'hr_tiem'",
        "column 'source': the pipeline defines no source or code system 'hr_tiem' (it has: hr)",
    );
}

#[test]
fn an_aggregate_that_does_not_fit_the_declared_type_names_the_indicator() {
    let f = with_body(&indicator(
        "heads",
        "numerator = \"sum(person)\"\ngrains = [\"month\"]",
    ));
    expect(
        &f,
        ("pipeline.toml", "sum(person)"),
        "indicator 'heads'",
        "numerator 'sum(person)' does not fit the declared column types: `sum` operation not supported for dtype `str`",
    );
    // The same from `run`, before any data is read.
    let err = f.run("2024-02-01").err().expect("the run must refuse");
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("indicator 'heads'"), "{err}");
}

#[test]
fn every_stage_reports_at_once() {
    // A source file missing a column, a goal owner that is not a unit and an expression that
    // does not compile: one validate names them all.
    let f = Fixture::new();
    f.file(
        "hr.csv",
        "month,unit,person,gender,hours\n2024-01-01,A1,p1,K,10\n",
    );
    let body = HR_SOURCE.to_string()
        + &ok_indicator().replace("owner = \"K\"", "owner = \"NOPE\"")
        + &indicator("bad", "numerator = \"sum(hours) +\"\ngrains = [\"month\"]");
    f.pipeline(&body);
    let (code, text) = problems(&f);
    assert_eq!(code, 2, "{text}");
    for needle in [
        "owner 'NOPE' is not an org unit",
        "numerator 'sum(hours) +' does not compile",
        "hr.csv: missing column(s) sick declared by source 'hr'",
    ] {
        assert!(text.contains(needle), "lacks '{needle}':\n{text}");
    }
}

#[test]
fn analysis_texts_are_checked_like_targets() {
    let f = Fixture::new();
    f.file("hr.csv", HR);
    f.file(
        "analyses.csv",
        "goal_id,indicator_id,org_unit_id,period,author,date,text\n\
         goal_sick,,K,2024-T1,C,2024-05-10,Bra\n\
         nope,,K,2024-T1,C,2024-05-10,x\n\
         goal_sick,sick,K,2024-T1,C,2024-05-10,x\n\
         ,sick,K,2024-T9,C,2024-05-10,x\n\
         ,sick,NOPE,2024,C,10/5/2024,x\n",
    );
    f.pipeline_with(
        "analyses = \"analyses.csv\"",
        &(HR_SOURCE.to_string() + &ok_indicator()),
    );
    expect(
        &f,
        ("analyses.csv", "nope,"),
        "analysis",
        "column 'goal_id': unknown goal 'nope'",
    );
    expect(
        &f,
        ("analyses.csv", "goal_sick,sick"),
        "analysis",
        "give either goal_id or indicator_id (one of them), not both or neither",
    );
    expect(
        &f,
        ("analyses.csv", "2024-T9"),
        "analysis",
        "column 'period': expected a period",
    );
    expect(
        &f,
        ("analyses.csv", "NOPE"),
        "analysis",
        "column 'org_unit_id': unknown org unit 'NOPE'",
    );
    expect(
        &f,
        ("analyses.csv", "NOPE"),
        "analysis",
        "column 'date': expected a date YYYY-MM-DD, found '10/5/2024'",
    );
}

#[test]
fn a_cross_source_side_is_checked_against_its_own_source() {
    // The numerator reads 'hours' from the ledger, which declares no such column; the
    // indicator-level filter would be ambiguous between the sides; 'budgt' is no source.
    let ledger = r#"
[[sources]]
name = "ledger"
path = "hr.csv"
format = "csv"
date_column = "month"
org_column = "unit"
[sources.columns]
month = "date"
unit = "string"
"#;
    let body = ledger.to_string()
        + &indicator(
            "cost_per_hour",
            "numerator = { source = \"ledger\", expr = \"sum(hours)\" }\ndenominator = \"sum(hours)\"\nfilter = \"gender = 'K'\"\ngrains = [\"month\"]",
        )
        + &indicator(
            "budget_per_hour",
            "numerator = { source = \"budgt\", expr = \"sum(hours)\" }\ndenominator = \"sum(hours)\"\ngrains = [\"month\"]",
        );
    let f = with_body(&body);
    expect(
        &f,
        ("pipeline.toml", "source = \"ledger\", expr"),
        "indicator 'cost_per_hour'",
        "numerator uses column 'hours', which source 'ledger' does not declare",
    );
    expect(
        &f,
        ("pipeline.toml", "filter = \"gender = 'K'\""),
        "indicator 'cost_per_hour'",
        "a cross-source indicator filters each side",
    );
    expect(
        &f,
        ("pipeline.toml", "source = \"budgt\""),
        "indicator 'budget_per_hour'",
        "unknown source 'budgt'",
    );
}

#[test]
fn a_pipeline_file_saved_as_ansi_names_its_line_and_asks_for_utf8() {
    let f = with_body(&ok_indicator().replace("name = \"sick\"", "name = \"Sjukfrånvaro\""));
    let text = std::fs::read_to_string(f.path("pipeline.toml")).unwrap();
    let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(&text);
    std::fs::write(f.path("pipeline.toml"), &bytes).unwrap();
    let line = line_of_text(&text, "Sjukfrånvaro");
    let (code, message) = problems(&f);
    assert_eq!(code, 2);
    assert!(
        message.contains(&format!("pipeline.toml:{line}:"))
            && message.contains("save the pipeline file as UTF-8"),
        "{message}"
    );
}

fn line_of_text(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn a_misspelt_id_names_the_one_it_resembles() {
    let body = ok_indicator()
        .replace("indicators = [\"sick\"]", "indicators = [\"sikc\"]")
        .replace("owner = \"K\"", "owner = \"a1\"")
        .replace("source = \"hr\"", "source = \"hrr\"");
    let f = with_body(&body);
    expect(
        &f,
        ("pipeline.toml", "\"sikc\""),
        "goal 'goal_sick'",
        "unknown indicator 'sikc' (did you mean 'sick'?)",
    );
    expect(
        &f,
        ("pipeline.toml", "owner = \"a1\""),
        "goal 'goal_sick'",
        "owner 'a1' is not an org unit (did you mean 'A1'?)",
    );
    expect(
        &f,
        ("pipeline.toml", "source = \"hrr\""),
        "indicator 'sick'",
        "unknown source 'hrr' (did you mean 'hr'?)",
    );
}

#[test]
fn a_sources_date_and_org_columns_must_be_declared_with_their_types() {
    // The date column declared as text, the org column as a number.
    let f = Fixture::new();
    f.file("hr.csv", HR);
    let source = HR_SOURCE
        .replace("month = \"date\"", "month = \"string\"")
        .replace("unit = \"string\"", "unit = \"int\"");
    f.pipeline(&(source + &ok_indicator()));
    expect(
        &f,
        ("pipeline.toml", "date_column = \"month\""),
        "source 'hr'",
        "date_column 'month' is declared as string, expected date, month or year",
    );
    expect(
        &f,
        ("pipeline.toml", "org_column = \"unit\""),
        "source 'hr'",
        "org_column 'unit' is declared as int, expected string",
    );
    // Key columns that are not declared at all.
    let f = Fixture::new();
    f.file("hr.csv", HR);
    let source = HR_SOURCE
        .replace("date_column = \"month\"", "date_column = \"day\"")
        .replace("org_column = \"unit\"", "org_column = \"team\"");
    f.pipeline(&(source + &ok_indicator()));
    expect(
        &f,
        ("pipeline.toml", "date_column = \"day\""),
        "source 'hr'",
        "date_column 'day' is not among the declared columns",
    );
    expect(
        &f,
        ("pipeline.toml", "org_column = \"team\""),
        "source 'hr'",
        "org_column 'team' is not among the declared columns",
    );
}
