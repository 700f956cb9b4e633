//! The words of the controller's report in Swedish (the default: nämnder read Swedish) and
//! English, and the formatting of numbers in each.

/// The report's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Sv,
    En,
}

/// The Swedish of the phrases the flag reasons are written in, replaced in this order (a
/// phrase before any shorter one it contains).
const REASON_PHRASES: &[(&str, &str)] = &[
    (
        "the seasonally adjusted series",
        "den säsongsjusterade serien",
    ),
    ("the series", "serien"),
    (
        " has moved to the worse side of its baseline ",
        " har rört sig åt det sämre hållet jämfört med sin baslinje ",
    ),
    (
        " was on the worse side of its baseline ",
        " låg på den sämre sidan om sin baslinje ",
    ),
    (" in period ", " under perioden "),
    (
        " is near the worse-side limit of its baseline ",
        " ligger nära gränsen åt det sämre hållet för sin baslinje ",
    ),
    (
        ", after a significant deteriorating trend",
        ", efter en signifikant trend åt det sämre hållet",
    ),
    // Before " in the latest period", which it contains.
    ("not in the latest period", "inte i senaste perioden"),
    (" in the latest period", " i senaste perioden"),
    ("EWMA beyond its limit", "EWMA bortom sin gräns"),
    (
        "; limits widened for lag-1 autocorrelation ",
        "; gränserna vidgade för autokorrelation ",
    ),
    (
        "common-cause variation around its seasonal pattern",
        "slumpmässig variation kring säsongsmönstret",
    ),
    (
        "consistently failing the target: it lies outside the process limits, so the process must change to meet it",
        "når konsekvent inte målvärdet: det ligger utanför processgränserna, så processen måste förändras för att nå det",
    ),
    (
        "non-random runs around the mean (Anhøj rules): the process may be shifting",
        "icke-slumpmässiga serier kring medelvärdet (Anhøjs regler): processen kan vara på väg att förändras",
    ),
    (
        "hit and miss: the target lies within the process limits",
        "ibland, ibland inte: målvärdet ligger inom processgränserna",
    ),
    ("common-cause variation", "slumpmässig variation"),
    (
        "the latest value is above the upper process limit",
        "senaste värdet ligger över den övre processgränsen",
    ),
    (
        "the latest value is below the lower process limit",
        "senaste värdet ligger under den nedre processgränsen",
    ),
    (
        "values in a row above the upper process limit",
        "värden i rad över den övre processgränsen",
    ),
    (
        "values in a row below the lower process limit",
        "värden i rad under den nedre processgränsen",
    ),
    (" limits)", "-gränser)"),
    ("below the lower ", "under den nedre "),
    ("above the upper ", "över den övre "),
    (" limit), ", "-gränsen), "),
    ("p′ limit", "p′-gränsen"),
    ("u′ limit", "u′-gränsen"),
    ("periods rising in a row", "perioder i rad med ökning"),
    ("periods falling in a row", "perioder i rad med minskning"),
    ("periods above the mean", "perioder i rad över medelvärdet"),
    ("periods below the mean", "perioder i rad under medelvärdet"),
    (
        "2 of the last 3 values near a process limit",
        "2 av de 3 senaste värdena nära en processgräns",
    ),
    ("the latest value is ", "senaste värdet ligger "),
    ("concern at ", "oroande vid "),
    ("concern: ", "oroande: "),
    (", since ", ", sedan "),
    ("no values", "inga värden"),
    ("seasonal", "säsongsjusterat"),
    ("expected", "förväntat"),
];

impl Lang {
    pub fn parse(text: &str) -> Option<Lang> {
        match text {
            "sv" => Some(Lang::Sv),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    pub(crate) fn code(self) -> &'static str {
        match self {
            Lang::Sv => "sv",
            Lang::En => "en",
        }
    }

    /// The Swedish or the English text.
    pub(crate) fn t(self, sv: &'static str, en: &'static str) -> &'static str {
        match self {
            Lang::Sv => sv,
            Lang::En => en,
        }
    }

    pub(crate) fn status(self, status: &str) -> &'static str {
        match status {
            "met" => self.t("Uppfyllt", "Met"),
            "partly_met" => self.t("Delvis uppfyllt", "Partly met"),
            "not_met" => self.t("Ej uppfyllt", "Not met"),
            "no_data" => self.t("Uppgift saknas", "No data"),
            "no_target" => self.t("Målvärde saknas", "No target"),
            "not_assessable" => self.t("Kan ej bedömas", "Not assessable"),
            _ => "–",
        }
    }

    pub(crate) fn flag(self, flag: &str) -> &'static str {
        match flag {
            "act" => self.t("Agera", "Act"),
            "watch" => self.t("Bevaka", "Watch"),
            _ => self.t("Ingen signal", "No signal"),
        }
    }

    pub(crate) fn basis(self, basis: &str) -> &'static str {
        match basis {
            "core_mission" => self.t("Kärnuppdrag", "Core mission"),
            "political_decision" => self.t("Politiskt beslut", "Political decision"),
            "law" => self.t("Lag", "Law"),
            _ => "",
        }
    }

    pub(crate) fn assurance(self, assurance: &str) -> &'static str {
        match assurance {
            "consistent_pass" => self.t("når målet konsekvent", "consistently passes the target"),
            "consistent_fail" => {
                self.t("når inte målet konsekvent", "consistently fails the target")
            }
            "inconsistent" => self.t("når målet ibland", "hit and miss"),
            _ => "",
        }
    }

    pub(crate) fn outlook(self, outlook: &str) -> &'static str {
        match outlook {
            "likely" => self.t("troligt att målet nås", "likely to meet the target"),
            "unlikely" => self.t("osannolikt att målet nås", "unlikely to meet the target"),
            "uncertain" => self.t("osäkert om målet nås", "uncertain"),
            _ => "",
        }
    }

    /// A signal's reason (written in English by the engine) in the report's language.
    pub(crate) fn reason(self, reason: &str) -> String {
        if self == Lang::En {
            return reason.to_string();
        }
        let mut out = reason.to_string();
        for (en, sv) in REASON_PHRASES.iter().copied() {
            out = out.replace(en, sv);
        }
        out
    }

    /// A number with the language's decimal mark and thousands separator (a narrow space in
    /// Swedish), at most `decimals` decimals.
    pub(crate) fn number(self, value: f64, decimals: usize) -> String {
        if !value.is_finite() {
            return "–".to_string();
        }
        let text = format!("{:.*}", decimals, value.abs());
        let (int, frac) = match text.split_once('.') {
            Some((i, f)) => (i.to_string(), Some(f.to_string())),
            None => (text, None),
        };
        let sep = self.t("\u{202f}", ",");
        let mut grouped = String::new();
        for (k, c) in int.chars().enumerate() {
            if k > 0 && (int.len() - k) % 3 == 0 {
                grouped.push_str(sep);
            }
            grouped.push(c);
        }
        let sign = if value < 0.0 && text_is_nonzero(&int, frac.as_deref()) {
            "−"
        } else {
            ""
        };
        match frac {
            Some(f) => format!("{sign}{grouped}{}{f}", self.t(",", ".")),
            None => format!("{sign}{grouped}"),
        }
    }
}

fn text_is_nonzero(int: &str, frac: Option<&str>) -> bool {
    int.chars()
        .chain(frac.unwrap_or("").chars())
        .any(|c| c != '0')
}

/// Decimals that suit a value's size: 0 from 1,000 up, 1 from 10, 2 below.
pub(crate) fn decimals_for(value: f64) -> usize {
    let a = value.abs();
    if a >= 1000.0 {
        0
    } else if a >= 10.0 {
        1
    } else {
        2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_swedish_and_english() {
        assert_eq!(Lang::Sv.number(1234567.891, 1), "1\u{202f}234\u{202f}567,9");
        assert_eq!(Lang::En.number(1234567.891, 1), "1,234,567.9");
        assert_eq!(Lang::Sv.number(-0.004, 2), "0,00");
        assert_eq!(Lang::Sv.number(-5.26, 1), "−5,3");
        assert_eq!(Lang::Sv.number(999.0, 0), "999");
    }

    #[test]
    fn reasons_in_swedish() {
        assert_eq!(
            Lang::Sv.reason("concern: 7 periods rising in a row, since 2024-03"),
            "oroande: 7 perioder i rad med ökning, sedan 2024-03"
        );
        assert_eq!(
            Lang::Sv.reason(
                "the series was on the worse side of its baseline 2022-01–2023-12 in period 2024-09, not in the latest period"
            ),
            "serien låg på den sämre sidan om sin baslinje 2022-01–2023-12 under perioden 2024-09, inte i senaste perioden"
        );
        assert_eq!(
            Lang::Sv.reason("concern: the latest value is below the lower p′ limit"),
            "oroande: senaste värdet ligger under den nedre p′-gränsen"
        );
    }
}
