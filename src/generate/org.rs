//! Uddevalla's org tree as the fixtures use it: the council's five boards, their administrations
//! (DOMAIN.md §1), departments and units, with cost centres for the HR and ledger systems.

use super::Table;
use crate::period::Month;

pub(crate) struct Unit {
    pub(crate) id: &'static str,
    pub(crate) name: &'static str,
    pub(crate) parent: &'static str,
    pub(crate) kind: &'static str,
    /// Employees at scale 1 (enheter only).
    pub(crate) staff: usize,
    /// Cost centre in the HR and ledger systems (enheter only).
    pub(crate) cost_centre: &'static str,
}

const fn u(
    id: &'static str,
    name: &'static str,
    parent: &'static str,
    kind: &'static str,
    staff: usize,
    cost_centre: &'static str,
) -> Unit {
    Unit {
        id,
        name,
        parent,
        kind,
        staff,
        cost_centre,
    }
}

/// The team that books on cost centre 1450 moved from Hemtjänst Centrum to Hemtjänst Norr.
pub(crate) const MOVED_TEAM_CODE: &str = "1450";
pub(crate) const MOVED_TEAM_DATE: (i32, u32) = (2023, 7);

impl Unit {
    /// The cost centre this unit's own staff book on in month `m`: Hemtjänst Ljungskile got a
    /// new one at the 2024 reorganisation.
    pub(crate) fn cost_centre_at(&self, m: Month) -> &'static str {
        if self.id == "SOC-ALD-HTL" && m >= Month::new(2024, 1) {
            "1441"
        } else {
            self.cost_centre
        }
    }
}

#[rustfmt::skip]
pub(crate) static UNITS: &[Unit] = &[
    u("UK", "Uddevalla kommun", "", "kommun", 0, ""),
    u("KS", "Kommunstyrelsen", "UK", "namnd", 0, ""),
    u("BUN", "Barn- och utbildningsnämnden", "UK", "namnd", 0, ""),
    u("SN", "Socialnämnden", "UK", "namnd", 0, ""),
    u("SBN", "Samhällsbyggnadsnämnden", "UK", "namnd", 0, ""),
    u("KFN", "Kultur- och fritidsnämnden", "UK", "namnd", 0, ""),
    u("KLK", "Kommunledningskontoret", "KS", "forvaltning", 0, ""),
    u("BUF", "Barn- och utbildningsförvaltningen", "BUN", "forvaltning", 0, ""),
    u("SOC", "Socialförvaltningen", "SN", "forvaltning", 0, ""),
    u("SBF", "Samhällsbyggnadsförvaltningen", "SBN", "forvaltning", 0, ""),
    u("KFF", "Kultur- och fritidsförvaltningen", "KFN", "forvaltning", 0, ""),
    u("KLK-HR", "HR-avdelningen", "KLK", "avdelning", 0, ""),
    u("KLK-EK", "Ekonomiavdelningen", "KLK", "avdelning", 0, ""),
    u("KLK-MS", "Medborgarservice", "KLK", "avdelning", 0, ""),
    u("KLK-HR-LON", "Lönecenter", "KLK-HR", "enhet", 9, "1101"),
    u("KLK-EK-RED", "Redovisning", "KLK-EK", "enhet", 7, "1102"),
    u("KLK-MS-KC", "Kontaktcenter", "KLK-MS", "enhet", 12, "1103"),
    u("KLK-MS-KOM", "Kommunikation", "KLK-MS", "enhet", 6, "1104"),
    u("BUF-FSK", "Förskoleavdelningen", "BUF", "avdelning", 0, ""),
    u("BUF-GSK", "Grundskoleavdelningen", "BUF", "avdelning", 0, ""),
    u("BUF-EH", "Elevhälsan", "BUF", "avdelning", 0, ""),
    u("BUF-FSK-KVA", "Kvarnbergets förskola", "BUF-FSK", "enhet", 14, "1201"),
    u("BUF-FSK-DAL", "Dalabergs förskola", "BUF-FSK", "enhet", 16, "1202"),
    u("BUF-FSK-HOV", "Hovhults förskola", "BUF-FSK", "enhet", 10, "1203"),
    u("BUF-FSK-UNN", "Unneröds förskola", "BUF-FSK", "enhet", 12, "1204"),
    u("BUF-FSK-LJS", "Ljungskile förskola", "BUF-FSK", "enhet", 11, "1205"),
    u("BUF-GSK-KAL", "Källdalsskolan", "BUF-GSK", "enhet", 24, "1211"),
    u("BUF-GSK-ANG", "Ängebyskolan", "BUF-GSK", "enhet", 20, "1212"),
    u("BUF-GSK-HER", "Herrestadskolan", "BUF-GSK", "enhet", 18, "1213"),
    u("BUF-GSK-LJU", "Ljungskileskolan", "BUF-GSK", "enhet", 22, "1214"),
    u("BUF-GSK-NOR", "Norgårdenskolan", "BUF-GSK", "enhet", 21, "1215"),
    u("BUF-GSK-SOM", "Sommarlustskolan", "BUF-GSK", "enhet", 19, "1216"),
    u("BUF-EH-CEH", "Central elevhälsa", "BUF-EH", "enhet", 8, "1221"),
    u("SOC-ALD", "Äldreomsorg", "SOC", "avdelning", 0, ""),
    u("SOC-IFO", "Individ- och familjeomsorg", "SOC", "avdelning", 0, ""),
    u("SOC-ALD-HTN", "Hemtjänst Norr", "SOC-ALD", "enhet", 22, "1410"),
    u("SOC-ALD-HTS", "Hemtjänst Söder", "SOC-ALD", "enhet", 20, "1420"),
    u("SOC-ALD-HTC", "Hemtjänst Centrum", "SOC-ALD", "enhet", 24, "1430"),
    u("SOC-ALD-HTL", "Hemtjänst Ljungskile", "SOC-ALD", "enhet", 12, "1440"),
    u("SOC-ALD-SOL", "Solgärde äldreboende", "SOC-ALD", "enhet", 28, "1460"),
    u("SOC-ALD-HAL", "Hälle lider äldreboende", "SOC-ALD", "enhet", 26, "1470"),
    u("SOC-IFO-FS", "Försörjningsstöd", "SOC-IFO", "enhet", 10, "1481"),
    u("SOC-IFO-BU", "Barn och unga", "SOC-IFO", "enhet", 14, "1482"),
    u("SBF-BYG", "Bygg och miljö", "SBF", "avdelning", 0, ""),
    u("SBF-GP", "Gata och park", "SBF", "avdelning", 0, ""),
    u("SBF-BYG-BL", "Bygglov", "SBF-BYG", "enhet", 9, "1501"),
    u("SBF-BYG-MI", "Miljö och hälsa", "SBF-BYG", "enhet", 8, "1502"),
    u("SBF-GP-GA", "Gata", "SBF-GP", "enhet", 11, "1511"),
    u("SBF-GP-PA", "Park", "SBF-GP", "enhet", 10, "1512"),
    u("KFF-BIB", "Bibliotek", "KFF", "avdelning", 0, ""),
    u("KFF-FRI", "Fritid", "KFF", "avdelning", 0, ""),
    u("KFF-BIB-STA", "Stadsbiblioteket", "KFF-BIB", "enhet", 11, "1601"),
    u("KFF-BIB-LJS", "Ljungskile bibliotek", "KFF-BIB", "enhet", 3, "1602"),
    u("KFF-BIB-HER", "Herrestads bibliotek", "KFF-BIB", "enhet", 3, "1603"),
    u("KFF-FRI-UNG", "Fritidsgårdar", "KFF-FRI", "enhet", 8, "1611"),
    u("KFF-FRI-BAD", "Walkesborgs badhus", "KFF-FRI", "enhet", 9, "1612"),
    u("KFF-FRI-KUS", "Kulturskolan", "KFF-FRI", "enhet", 10, "1613"),
];

pub(super) fn org_units() -> Table {
    let mut t = Table::new("org_units.csv", &["id", "name", "parent_id", "kind"]);
    for unit in UNITS {
        t.push(vec![
            unit.id.into(),
            unit.name.into(),
            unit.parent.into(),
            unit.kind.into(),
        ]);
    }
    t
}

pub(super) fn code_mapping() -> Table {
    let mut t = Table::new(
        "code_mapping.csv",
        &["source", "code", "unit_id", "valid_from", "valid_to"],
    );
    let moved = Month::new(MOVED_TEAM_DATE.0, MOVED_TEAM_DATE.1);
    // HR and the ledger share the cost centres: one code system, each code listed once.
    for source in ["kostnadsställe"] {
        for unit in UNITS.iter().filter(|u| u.kind == "enhet") {
            let row = |code: &str, from: &str, to: &str| {
                vec![
                    source.into(),
                    code.into(),
                    unit.id.into(),
                    from.into(),
                    to.into(),
                ]
            };
            if unit.id == "SOC-ALD-HTL" {
                t.push(row("1440", "", "2023-12-31"));
                t.push(row("1441", "2024-01-01", ""));
            } else {
                t.push(row(unit.cost_centre, "", ""));
            }
        }
        let before = (Month(moved.0 - 1))
            .last_day()
            .format("%Y-%m-%d")
            .to_string();
        let from = moved.first_day().format("%Y-%m-%d").to_string();
        t.push(vec![
            source.into(),
            MOVED_TEAM_CODE.into(),
            "SOC-ALD-HTC".into(),
            String::new(),
            before,
        ]);
        t.push(vec![
            source.into(),
            MOVED_TEAM_CODE.into(),
            "SOC-ALD-HTN".into(),
            from,
            String::new(),
        ]);
    }
    t
}
