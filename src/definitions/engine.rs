//! The `[engine]` a pipeline asks phase 1 to run on (or `run --engine`): how it is written and
//! read. Starting and using an engine is `compute`'s work.

/// The engine asked for (`[engine] name` or `run --engine`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    Polars,
    /// DataFusion in this process.
    DataFusion,
    /// A Ballista scheduler, `ballista://host:port`.
    Ballista {
        url: String,
    },
}

impl Engine {
    pub fn parse(text: &str) -> Result<Engine, String> {
        let text = text.trim();
        match text {
            "polars" => return Ok(Engine::Polars),
            "datafusion" => return Ok(Engine::DataFusion),
            _ => {}
        }
        if let Some(rest) = text.strip_prefix("ballista://") {
            let (host, port) = rest
                .trim_end_matches('/')
                .rsplit_once(':')
                .unwrap_or((rest, ""));
            if !host.is_empty() && port.parse::<u16>().is_ok() {
                return Ok(Engine::Ballista {
                    url: text.to_string(),
                });
            }
            return Err(format!(
                "'{text}': a Ballista scheduler is written ballista://host:port, e.g. ballista://127.0.0.1:50050"
            ));
        }
        Err(format!(
            "unknown engine '{text}': use polars, datafusion or ballista://host:port"
        ))
    }

    /// True when phase 1 is written as SQL.
    pub(crate) fn is_sql(&self) -> bool {
        !matches!(self, Engine::Polars)
    }
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Engine::Polars => write!(f, "polars"),
            Engine::DataFusion => write!(f, "datafusion"),
            Engine::Ballista { url } => write!(f, "{url}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines_parse_and_bad_ones_say_the_form() {
        assert_eq!(Engine::parse("polars"), Ok(Engine::Polars));
        assert_eq!(Engine::parse(" datafusion "), Ok(Engine::DataFusion));
        assert_eq!(
            Engine::parse("ballista://10.0.0.5:50050"),
            Ok(Engine::Ballista {
                url: "ballista://10.0.0.5:50050".into()
            })
        );
        for bad in [
            "ballista://host",
            "ballista://:50050",
            "spark://x:1",
            "Polars",
        ] {
            let why = Engine::parse(bad).unwrap_err();
            assert!(why.contains(bad.trim()), "{why}");
        }
    }
}
