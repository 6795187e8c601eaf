//! The checks of `ci` that are the project's own: no layer links what it merely wraps, and
//! the modules of the core crates form a DAG. Each reads its input (`cargo tree`'s output,
//! the sources) and hands it to a pure function, which the tests below run on inputs made
//! to pass and to fail.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

/// What each layer may link, by what it must not: a layer depends on store-format and on
/// nothing it merely wraps (docs/ARCHITECTURE.md), so a program that takes one layer links
/// neither the engine nor another layer's runtime.
const LAYER_DEPENDENCIES: &[(&str, &[&str])] = &[
    (
        "store-metrics",
        &[
            "store_mmap",
            "store_concurrent",
            "store_cache",
            "store_async",
            "tokio",
            "arc_swap",
            "crossbeam_channel",
            "memmap2",
            "moka",
        ],
    ),
    (
        // moka's own crossbeam-channel is the cache's; the handle's arc-swap is not.
        "store-cache",
        &[
            "store_mmap",
            "store_concurrent",
            "store_async",
            "store_metrics",
            "tokio",
            "arc_swap",
            "memmap2",
        ],
    ),
    (
        "store-async",
        &[
            "store_mmap",
            "store_concurrent",
            "store_cache",
            "store_metrics",
            "arc_swap",
            "crossbeam_channel",
            "memmap2",
            "moka",
        ],
    ),
];

/// Crates whose modules must form a DAG: no module reaches, through `crate::` paths, a
/// module that reaches it back.
const MODULE_DAG_CRATES: &[&str] = &["store-format", "store-mmap", "store-concurrent"];

/// Fails when a layer's normal dependencies (`cargo tree`, every feature on) include a crate
/// it must not link.
pub(crate) fn layer_dependencies() -> Result<(), String> {
    for (package, forbidden) in LAYER_DEPENDENCIES {
        let args = [
            "tree",
            "--package",
            package,
            "--edges",
            "normal",
            "--all-features",
            "--prefix",
            "none",
            "--format",
            "{lib}",
        ];
        eprintln!("xtask: $ cargo {}", args.join(" "));
        let output = Command::new(crate::cargo_bin())
            .args(args)
            .output()
            .map_err(|err| format!("cannot run `cargo tree`: {err}"))?;
        if !output.status.success() {
            return Err(format!(
                "`cargo tree --package {package}` failed: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        forbidden_links(package, &String::from_utf8_lossy(&output.stdout), forbidden)?;
    }
    Ok(())
}

/// Fails, naming them, when `tree` (`cargo tree --prefix none --format {lib}`: a library
/// name first on each line) holds any of `forbidden`.
fn forbidden_links(package: &str, tree: &str, forbidden: &[&str]) -> Result<(), String> {
    let found: BTreeSet<&str> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| forbidden.contains(name))
        .collect();
    if found.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{package} depends on {}, which it must not link: a layer depends on store-format and on nothing it wraps",
        found.into_iter().collect::<Vec<_>>().join(", ")
    ))
}

/// Fails when the modules of one of [`MODULE_DAG_CRATES`] import one another in a circle;
/// `root` is the workspace's directory.
pub(crate) fn module_graphs(root: &Path) -> Result<(), String> {
    for krate in MODULE_DAG_CRATES {
        let dir = root.join("crates").join(krate).join("src");
        eprintln!("xtask: module graph of {}", dir.display());
        let mut modules = BTreeMap::new();
        let entries = std::fs::read_dir(&dir).map_err(|err| format!("{}: {err}", dir.display()))?;
        for entry in entries {
            let path = entry
                .map_err(|err| format!("{}: {err}", dir.display()))?
                .path();
            let Some(name) = path.file_stem().and_then(|n| n.to_str()) else {
                continue;
            };
            if path.extension().is_none_or(|ext| ext != "rs") || name == "lib" {
                continue;
            }
            let text = std::fs::read_to_string(&path)
                .map_err(|err| format!("{}: {err}", path.display()))?;
            modules.insert(name.to_owned(), text);
        }
        if let Some(circle) = find_circle(&module_graph(&modules)) {
            return Err(format!(
                "the modules of {krate} import one another in a circle: {}",
                circle.join(" -> ")
            ));
        }
    }
    Ok(())
}

/// Each module's name, by the modules its code names through `crate::` paths, alone
/// (`crate::index::Index`) or in a group (`use crate::{index::Index, layout};`, across lines
/// too); its test module, the comment lines and itself left out. `modules` maps a module's
/// name to its source.
fn module_graph(modules: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let is_name = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
    let first_name = |path: &str| -> String {
        path.trim_start()
            .chars()
            .take_while(|&c| is_name(c))
            .collect()
    };
    modules
        .iter()
        .map(|(name, text)| {
            let code = text
                .split("#[cfg(test)]\nmod tests")
                .next()
                .unwrap_or_default()
                .lines()
                .filter(|line| !line.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            let mut uses = BTreeSet::new();
            for (at, _) in code.match_indices("crate::") {
                let rest = &code[at + "crate::".len()..];
                if let Some(group) = rest.strip_prefix('{') {
                    // The group's items at its own depth: `a::{b, c}, d` names a and d.
                    let mut depth = 0;
                    let mut item_start = 0;
                    for (i, c) in group.char_indices() {
                        match c {
                            '{' => depth += 1,
                            '}' if depth == 0 => {
                                uses.insert(first_name(&group[item_start..i]));
                                break;
                            }
                            '}' => depth -= 1,
                            ',' if depth == 0 => {
                                uses.insert(first_name(&group[item_start..i]));
                                item_start = i + 1;
                            }
                            _ => {}
                        }
                    }
                } else {
                    uses.insert(first_name(rest));
                }
            }
            uses.retain(|module| !module.is_empty() && module != name);
            (name.clone(), uses)
        })
        .collect()
}

/// The first circle a depth-first search of `edges` closes, its first module repeated at
/// its end; edges to names that are not modules of the graph are not followed.
fn find_circle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        module: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|m| m == module) {
            let mut circle = path[at..].to_vec();
            circle.push(module.to_owned());
            return Some(circle);
        }
        if done.contains(module) {
            return None;
        }
        path.push(module.to_owned());
        for next in edges.get(module).into_iter().flatten() {
            if edges.contains_key(next)
                && let Some(circle) = visit(next, edges, path, done)
            {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(module.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|module| visit(module, edges, &mut Vec::new(), &mut done))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(modules: &[(&str, &str)]) -> BTreeMap<String, String> {
        modules
            .iter()
            .map(|(name, text)| (name.to_string(), text.to_string()))
            .collect()
    }

    fn names(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_module_uses_what_its_code_names_through_crate_paths() {
        let graph = module_graph(&sources(&[
            (
                "store",
                "use crate::index::Index;\nuse crate::{\n    layout::{self, entry, Layout},\n    segment,\n};\nfn f() -> crate::error::Result<()> { crate::store::g() }\n",
            ),
            (
                "index",
                "// crate::store is named in a comment only\n  /// and crate::segment in a doc\nfn f() {}\n#[cfg(test)]\nmod tests {\n    use crate::store::Store;\n}\n",
            ),
            ("layout", "use crate::{error};\n"),
            ("spans", "use crate::checkpoint_file2::Frame;\n"),
        ]));
        assert_eq!(
            graph["store"],
            names(&["index", "layout", "segment", "error"])
        );
        assert_eq!(graph["index"], names(&[]));
        assert_eq!(graph["layout"], names(&["error"]));
        assert_eq!(graph["spans"], names(&["checkpoint_file2"]));
    }

    /// The workspace's own crates pass; a workspace without them is an error, not a pass.
    #[test]
    fn the_core_crates_modules_form_a_dag() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        assert_eq!(module_graphs(&root), Ok(()));
        assert!(module_graphs(&root.join("no-such-dir")).is_err());
    }

    /// A workspace whose store-mmap has a circle among its `.rs` modules fails by name;
    /// `lib.rs` and files of other kinds are not modules of the graph.
    #[test]
    fn a_circle_among_a_crates_files_fails_the_check() {
        let root = std::env::temp_dir().join(format!("xtask-graph-{}", std::process::id()));
        let write = |krate: &str, files: &[(&str, &str)]| {
            let src = root.join("crates").join(krate).join("src");
            std::fs::create_dir_all(&src).unwrap();
            for (name, text) in files {
                std::fs::write(src.join(name), text).unwrap();
            }
        };
        write("store-format", &[("lib.rs", "pub use crate::a::A;")]);
        write("store-concurrent", &[("lib.rs", "")]);
        write(
            "store-mmap",
            &[
                ("lib.rs", "pub use crate::store::Store;"),
                (
                    "store.rs",
                    "use crate::index::Index;\nfn f() { crate::notes::g() }",
                ),
                ("index.rs", "// none"),
                ("notes.txt", "crate::store"),
            ],
        );
        let dag = module_graphs(&root);
        write("store-mmap", &[("index.rs", "use crate::store::Store;")]);
        let circle = module_graphs(&root);
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(dag, Ok(()));
        assert_eq!(
            circle,
            Err(
                "the modules of store-mmap import one another in a circle: index -> store -> index"
                    .to_owned()
            )
        );
    }

    #[test]
    fn a_circle_of_modules_is_found_and_named() {
        let graph = module_graph(&sources(&[
            ("a", "use crate::b::B;"),
            ("b", "use crate::{c, error};"),
            ("c", "fn f() { crate::a::g() }"),
            ("d", "use crate::a::A;"),
        ]));
        assert_eq!(
            find_circle(&graph),
            Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
        );
        // The same modules less the edge that closes it: a DAG, and an edge to a name
        // that is no module (`error`) is not followed.
        let dag = module_graph(&sources(&[
            ("a", "use crate::b::B;"),
            ("b", "use crate::{c, error};"),
            ("c", "fn f() {}"),
            ("d", "use crate::a::A;"),
        ]));
        assert_eq!(find_circle(&dag), None);
    }

    #[test]
    fn a_layer_linking_what_it_must_not_is_refused_by_name() {
        let tree = "store_async\nstore_format\nthiserror\ntokio\ntokio_macros (proc-macro)\nmoka\n";
        assert_eq!(forbidden_links("store-async", tree, &["memmap2"]), Ok(()));
        let err = forbidden_links("store-async", tree, &["moka", "tokio", "memmap2"]).unwrap_err();
        assert!(
            err.starts_with("store-async depends on moka, tokio, which it must not link"),
            "{err}"
        );
    }
}
