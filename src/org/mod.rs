//! The org tree (kommun → nämnd → förvaltning → avdelning → enhet) and the mapping from
//! source-system codes (cost centres) to units, with validity dates.
//!
//! This module owns the tree's integrity (unique ids, no orphans, no cycles) and offers it to
//! the compute stage as frames: each unit with its ancestors, so a roll-up is one join.

mod mapping;

pub(crate) use mapping::CodeMapping;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use polars::prelude::*;

use crate::definitions::{Diagnostic, Diagnostics, TableDialect, read_table};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OrgUnit {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) parent_id: Option<String>,
    /// kommun / namnd / forvaltning / avdelning / enhet, as the file says.
    pub(crate) kind: String,
}

/// A validated org tree: one root or more, every parent known, no cycles.
#[derive(Debug, Clone)]
pub struct OrgTree {
    /// Units sorted by id, so every frame built from the tree is deterministic.
    units: Vec<OrgUnit>,
    index: HashMap<String, usize>,
    /// Depth below its root (root = 0), per unit index.
    depth: Vec<u32>,
}

/// A unit without a parent that is not a declared root is most often a `parent_id` blanked by
/// mistake: its rows would silently leave every unit above it.
fn check_roots(
    path: &Path,
    units: &[OrgUnit],
    lines: &BTreeMap<String, u64>,
    declared: Option<&[String]>,
) -> Vec<Diagnostic> {
    let line = |id: &str| lines.get(id).copied().unwrap_or(0) as usize;
    let found: Vec<&OrgUnit> = units.iter().filter(|u| u.parent_id.is_none()).collect();
    let mut problems = Vec::new();
    match declared {
        None => {
            if let Some((first, others)) = found.split_first() {
                for u in others {
                    problems.push(Diagnostic::at_line(
                        path,
                        line(&u.id),
                        format!("unit '{}'", u.id),
                        format!(
                            "no parent_id, but '{}' (line {}) is already the tree's root: a parent_id left blank by mistake? \
                             (a tree with several roots declares them in the pipeline: [org] roots = [\"{}\", \"{}\"])",
                            first.id,
                            line(&first.id),
                            first.id,
                            u.id
                        ),
                    ));
                }
            }
        }
        Some(declared) => {
            for u in &found {
                if !declared.contains(&u.id) {
                    problems.push(Diagnostic::at_line(
                        path,
                        line(&u.id),
                        format!("unit '{}'", u.id),
                        format!(
                            "no parent_id, but it is not among the declared roots ({}): a parent_id left blank by mistake?",
                            declared.join(", ")
                        ),
                    ));
                }
            }
            for id in declared {
                let is_root = found.iter().any(|u| &u.id == id);
                if !is_root {
                    let message = if lines.contains_key(id) {
                        format!("declared root '{id}' has a parent_id")
                    } else {
                        format!("declared root '{id}' is not a unit in the file")
                    };
                    problems.push(Diagnostic::file(path, message));
                }
            }
        }
    }
    problems
}

impl OrgTree {
    /// Reads `id, name, parent_id, kind` from a CSV file and checks the tree: unique ids, known
    /// parents, no cycles, and exactly one root — or exactly the `roots` declared.
    pub(crate) fn load(
        path: &Path,
        roots: Option<&[String]>,
        dialect: TableDialect,
    ) -> Result<OrgTree, Diagnostics> {
        let (rows, mut problems) = read_table(
            path,
            "org units",
            &["id", "name", "parent_id", "kind"],
            dialect,
        )?;
        let mut units = Vec::new();
        let mut lines: BTreeMap<String, u64> = BTreeMap::new();
        for row in rows {
            let line = row.line;
            let id = row.get(0).to_string();
            if id.is_empty() {
                problems.push(Diagnostic::at_line(
                    path,
                    line,
                    "",
                    "column 'id': empty unit id",
                ));
                continue;
            }
            if let Some(first) = lines.get(&id) {
                problems.push(Diagnostic::at_line(
                    path,
                    line,
                    format!("unit '{id}'"),
                    format!("duplicate unit id (first on line {first})"),
                ));
                continue;
            }
            lines.insert(id.clone(), line as u64);
            let parent = row.get(2);
            units.push(OrgUnit {
                id,
                name: row.get(1).to_string(),
                parent_id: (!parent.is_empty()).then(|| parent.to_string()),
                kind: row.get(3).to_string(),
            });
        }
        if units.is_empty() && problems.is_empty() {
            problems.push(Diagnostic::file(path, "org units file has no units"));
        }
        if problems.is_empty() {
            problems.extend(check_roots(path, &units, &lines, roots));
        }
        match OrgTree::from_units(units) {
            Ok(tree) if problems.is_empty() => Ok(tree),
            Ok(_) => Err(Diagnostics(problems)),
            Err(tree_problems) => {
                for (id, message) in tree_problems {
                    let line = lines.get(&id).copied().unwrap_or(0) as usize;
                    problems.push(Diagnostic::at_line(
                        path,
                        line,
                        format!("unit '{id}'"),
                        message,
                    ));
                }
                Err(Diagnostics(problems))
            }
        }
    }

    /// Builds a tree from units; errors are `(unit id, message)` for orphans and cycles.
    pub(crate) fn from_units(mut units: Vec<OrgUnit>) -> Result<OrgTree, Vec<(String, String)>> {
        units.sort_by(|a, b| a.id.cmp(&b.id));
        let index: HashMap<String, usize> = units
            .iter()
            .enumerate()
            .map(|(i, u)| (u.id.clone(), i))
            .collect();
        let mut problems = Vec::new();
        for u in &units {
            if let Some(p) = &u.parent_id
                && !index.contains_key(p)
            {
                problems.push((
                    u.id.clone(),
                    format!("parent '{p}' is not a unit in the file (orphan)"),
                ));
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let mut depth = vec![0u32; units.len()];
        for (i, u) in units.iter().enumerate() {
            let mut cur = u.parent_id.as_deref();
            let mut d = 0u32;
            while let Some(p) = cur {
                d += 1;
                if d as usize > units.len() || p == u.id {
                    problems.push((
                        u.id.clone(),
                        "unit is its own ancestor (cycle in parent_id)".to_string(),
                    ));
                    break;
                }
                cur = units[index[p]].parent_id.as_deref();
            }
            depth[i] = d;
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(OrgTree {
            units,
            index,
            depth,
        })
    }

    pub(crate) fn units(&self) -> &[OrgUnit] {
        &self.units
    }

    /// `" (did you mean 'X'?)"` for the unit id most like `id`, or "".
    pub(crate) fn did_you_mean(&self, id: &str) -> String {
        crate::definitions::did_you_mean(id, self.units.iter().map(|u| u.id.as_str()))
    }

    pub(crate) fn get(&self, id: &str) -> Option<&OrgUnit> {
        self.index.get(id).map(|&i| &self.units[i])
    }

    pub(crate) fn contains(&self, id: &str) -> bool {
        self.index.contains_key(id)
    }

    /// Units without a parent.
    pub(crate) fn roots(&self) -> Vec<&OrgUnit> {
        self.units
            .iter()
            .filter(|u| u.parent_id.is_none())
            .collect()
    }

    /// The unit and all its ancestors, nearest first.
    pub(crate) fn ancestors_and_self(&self, id: &str) -> Vec<&OrgUnit> {
        let mut out = Vec::new();
        let mut cur = self.get(id);
        while let Some(u) = cur {
            out.push(u);
            cur = u.parent_id.as_deref().and_then(|p| self.get(p));
        }
        out
    }

    /// Ids of the unit and everything beneath it, sorted.
    pub(crate) fn subtree(&self, root: &str) -> Vec<&str> {
        self.units
            .iter()
            .filter(|u| self.ancestors_and_self(&u.id).iter().any(|a| a.id == root))
            .map(|u| u.id.as_str())
            .collect()
    }

    /// `__unit` → `org_unit_id` for every ancestor including the unit itself: joining rows on
    /// `__unit` makes each row count for its unit and every unit above it.
    pub(crate) fn ancestors_frame(&self) -> PolarsResult<DataFrame> {
        let (mut unit, mut ancestor) = (Vec::new(), Vec::new());
        for u in &self.units {
            for a in self.ancestors_and_self(&u.id) {
                unit.push(u.id.as_str());
                ancestor.push(a.id.as_str());
            }
        }
        df!("__unit" => unit, "org_unit_id" => ancestor)
    }

    /// The position of a unit in [`OrgTree::units`]: the integer key the compute stage groups by.
    pub(crate) fn index_of(&self, id: &str) -> Option<u32> {
        self.index.get(id).map(|&i| i as u32)
    }

    /// The deepest level of the tree (0 for a tree of roots only).
    pub(crate) fn max_depth(&self) -> u32 {
        self.depth.iter().copied().max().unwrap_or(0)
    }

    /// Parent index per unit index (`None` for roots).
    pub(crate) fn parent_indices(&self) -> Vec<Option<u32>> {
        self.units
            .iter()
            .map(|u| u.parent_id.as_deref().and_then(|p| self.index_of(p)))
            .collect()
    }

    /// `__unit` → `__ancestor` (both unit indices, u32) for the ancestor at `depth` of every unit
    /// at that depth or deeper: one level of a level-by-level roll-up.
    pub(crate) fn ancestor_at_depth_frame(&self, depth: u32) -> PolarsResult<DataFrame> {
        let parents = self.parent_indices();
        let (mut unit, mut ancestor) = (Vec::new(), Vec::new());
        for i in 0..self.units.len() as u32 {
            let mut a = i;
            let mut d = self.depth[i as usize];
            if d < depth {
                continue;
            }
            while d > depth {
                a = parents[a as usize].expect("a unit below depth 0 has a parent");
                d -= 1;
            }
            unit.push(i);
            ancestor.push(a);
        }
        df!("__unit" => unit, "__ancestor" => ancestor)
    }

    /// The unit at `index` and its ancestors' indices, nearest first.
    pub(crate) fn ancestor_indices(&self, index: u32) -> Vec<u32> {
        let mut out = Vec::new();
        let mut cur = Some(index as usize);
        while let Some(i) = cur {
            out.push(i as u32);
            cur = self.units[i]
                .parent_id
                .as_deref()
                .and_then(|p| self.index.get(p).copied());
        }
        out
    }

    /// `__unit` → `__ancestor` (unit indices, u32) for every ancestor including the unit itself.
    pub(crate) fn ancestor_index_frame(&self) -> PolarsResult<DataFrame> {
        let parents = self.parent_indices();
        let (mut unit, mut ancestor) = (Vec::new(), Vec::new());
        for i in 0..self.units.len() as u32 {
            let mut a = Some(i);
            while let Some(x) = a {
                unit.push(i);
                ancestor.push(x);
                a = parents[x as usize];
            }
        }
        df!("__unit" => unit, "__ancestor" => ancestor)
    }

    /// `__unit` (u32 index) → `org_unit_id`, to turn integer keys back into ids.
    pub(crate) fn unit_ids_frame(&self) -> PolarsResult<DataFrame> {
        df!(
            "__unit" => (0..self.units.len() as u32).collect::<Vec<_>>(),
            "org_unit_id" => self.units.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(),
        )
    }

    /// `org_unit_id, org_name, org_kind, org_level` (depth, root = 0).
    pub(crate) fn units_frame(&self) -> PolarsResult<DataFrame> {
        df!(
            "org_unit_id" => self.units.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(),
            "org_name" => self.units.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(),
            "org_kind" => self.units.iter().map(|u| u.kind.as_str()).collect::<Vec<_>>(),
            "org_level" => self.depth.iter().map(|&d| d as i32).collect::<Vec<_>>(),
        )
    }
}

/// Units whose parent in a previously published org tree (`org_units.parquet`:
/// `org_unit_id, parent_id`) is gone from `tree`: their history no longer rolls into that
/// parent, which is worth a word even when the new tree is valid (a förvaltning deleted by
/// mistake, its units moved up).
pub(crate) fn vanished_parents(tree: &OrgTree, previous: &DataFrame) -> PolarsResult<Vec<String>> {
    let ids = previous.column("org_unit_id")?.str()?;
    let parents = previous.column("parent_id")?.str()?;
    let mut out = Vec::new();
    for (id, parent) in ids.iter().zip(parents.iter()) {
        let (Some(id), Some(parent)) = (id, parent) else {
            continue;
        };
        let Some(unit) = tree.get(id) else { continue };
        if tree.contains(parent) {
            continue;
        }
        let now = match &unit.parent_id {
            Some(p) => format!("it now sits under '{p}'"),
            None => "it is now a root".to_string(),
        };
        out.push(format!(
            "unit '{id}': its parent '{parent}' in the last published run is no longer in the org tree; {now}"
        ));
    }
    Ok(out)
}

/// Named comparison groups of units (Kolada's "Liknande kommuner …"): CSV `group_id, member_id`
/// (other columns, such as a title, are ignored).
#[derive(Debug, Clone, Default)]
pub(crate) struct Groups {
    pub(crate) members: BTreeMap<String, Vec<String>>,
}

impl Groups {
    pub(crate) fn load(
        path: &Path,
        tree: &OrgTree,
        dialect: TableDialect,
    ) -> Result<Groups, Diagnostics> {
        let (rows, mut problems) = read_table(path, "groups", &["group_id", "member_id"], dialect)?;
        let mut members: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for row in rows {
            let (group, member) = (row.get(0), row.get(1));
            if !tree.contains(member) {
                problems.push(Diagnostic::at_line(
                    path,
                    row.line,
                    format!("group '{group}'"),
                    format!(
                        "column 'member_id': unknown org unit '{member}'{}",
                        tree.did_you_mean(member)
                    ),
                ));
                continue;
            }
            members
                .entry(group.to_string())
                .or_default()
                .push(member.to_string());
        }
        if problems.is_empty() {
            Ok(Groups { members })
        } else {
            Err(Diagnostics(problems))
        }
    }

    /// `__reference_group, org_unit_id` for every membership.
    pub(crate) fn frame(&self) -> PolarsResult<DataFrame> {
        let (mut g, mut u) = (Vec::new(), Vec::new());
        for (group, members) in &self.members {
            for m in members {
                g.push(group.as_str());
                u.push(m.as_str());
            }
        }
        df!("__reference_group" => g, "org_unit_id" => u)
    }
}
