//! `styrkort init`: a runnable starting point for a new kommun — a commented pipeline (Swedish
//! comments), an org tree with the five-nämnd skeleton, a code mapping, targets, actions and one
//! example source with a year of rows, so `styrkort run DIR/pipeline.toml` works at once.

use std::path::{Path, PathBuf};

use crate::Error;

const FILES: [(&str, &str); 6] = [
    (
        "pipeline.toml",
        include_str!("../../templates/init/pipeline.toml"),
    ),
    (
        "org_units.csv",
        include_str!("../../templates/init/org_units.csv"),
    ),
    (
        "code_mapping.csv",
        include_str!("../../templates/init/code_mapping.csv"),
    ),
    (
        "targets.csv",
        include_str!("../../templates/init/targets.csv"),
    ),
    (
        "actions.csv",
        include_str!("../../templates/init/actions.csv"),
    ),
    (
        "hr_time.csv",
        include_str!("../../templates/init/hr_time.csv"),
    ),
];

/// Writes the starter files into `dir` (created if missing; it must be empty: nothing is
/// overwritten). `name` names the pipeline and its output folder.
pub fn write_starter(dir: &Path, name: &str) -> Result<Vec<PathBuf>, Error> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(Error::Usage(format!(
            "--name '{name}': use letters a–z, digits, '-' and '_' (it names the output folder)"
        )));
    }
    if std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()) {
        return Err(Error::Usage(format!(
            "{} is not empty; init writes only into an empty or new folder, so nothing is overwritten",
            dir.display()
        )));
    }
    let write_err = |p: &Path, e: std::io::Error| Error::io("write", p)(e);
    std::fs::create_dir_all(dir).map_err(|e| write_err(dir, e))?;
    let mut written = Vec::new();
    for (file, text) in FILES {
        let path = dir.join(file);
        std::fs::write(&path, text.replace("NAME", name)).map_err(|e| write_err(&path, e))?;
        written.push(path);
    }
    Ok(written)
}
