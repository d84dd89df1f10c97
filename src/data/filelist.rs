//! The file list of an image folder: every image file and sub-folder under it, scanned once and cached
//! under the results folder, so that a run on a million-file folder starts in seconds.
//!
//! The scan lists directories without a `stat` per file (the entry type comes with the directory
//! listing; only symbolic links are followed with a `stat`), skips hidden entries, keeps regular files
//! with an image extension, follows links without looping or listing a file twice ([`follow_links`]), and sorts paths component by component (the order of a depth-first walk of sorted
//! folders, so the cache never changes which index an image gets).
//!
//! The cache: `<cache folder>/<hash>.txt` (for a run, `results/.filelists/`, named by the store's
//! layout, which sits above this layer and passes it down), `<hash>` an FNV-1a hash of the
//! folder's absolute path, which the file repeats (a different path under the same hash is a miss).
//! It records every folder of the tree with its modification time, then every image file. It is used
//! while every folder it records still has that modification time. Adding, removing or renaming an
//! entry changes its folder's mtime, so new, deleted and renamed images and sub-folders (at any
//! depth) are seen; a new sub-folder changes its parent's mtime. Limits: a file rewritten in place
//! under the same name is not a change (the list holds names, not contents: its pixels are read when
//! it is used); a tool that restores folders' mtimes after changing them (`touch -d`, some syncs) hides
//! the change; so may a network file system's attribute cache for a few seconds. Delete the cache
//! file (or the cache folder) to force a new scan. A folder changed within [`RACY_SECONDS`] of the scan
//! could change again within the same mtime tick unseen, so such a scan is not cached (git's "racy
//! clean" rule); nor is one whose names are not UTF-8 or hold a line break.
//!
//! Several runs starting at once each scan and write the same content under a temporary name and
//! rename it over the cache ([`crate::atomic::write_atomic`]): readers see the old file or a complete new
//! one. A damaged cache file is ignored and rewritten.

use std::fs;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;

use super::folder::{Walk, fnv1a, is_image_file};
use crate::atomic::write_atomic;

/// A scan is not cached when a folder it lists changed less than this before it began.
pub const RACY_SECONDS: u64 = 2;
/// First line of a cache file (the format's version).
const HEADER: &str = "sweep file list 1";

/// The image files and folders under a root folder (paths relative to it).
#[derive(Clone, Debug, PartialEq)]
pub struct Tree {
    /// Modification time of the root at the scan.
    root_mtime: SystemTime,
    /// Every folder under the root (not the root), sorted, with its modification time at the scan.
    dirs: Vec<(PathBuf, SystemTime)>,
    /// Every image file under the root, sorted.
    pub files: Vec<PathBuf>,
}

impl Tree {
    /// Scans `root` (which must be a folder).
    pub fn scan(root: &Path) -> anyhow::Result<Tree> {
        let mut tree = Tree { root_mtime: mtime(root)?, dirs: Vec::new(), files: Vec::new() };
        let (mut seen, mut links) = (Walk::default(), Vec::new());
        seen.first_visit(root);
        walk(root, Path::new(""), &mut tree, &mut seen, &mut links)?;
        follow_links(root, &mut tree, &mut seen, links)?;
        tree.dirs.sort_by(|a, b| a.0.components().cmp(b.0.components()));
        tree.files.sort_by(|a, b| a.components().cmp(b.components()));
        Ok(tree)
    }

    /// The tree of `root`: from the cache in `cache_dir` when it is still valid, else scanned (and
    /// cached when it can be; see the module docs). A cache that cannot be written is no error.
    pub fn cached(root: &Path, cache_dir: &Path) -> anyhow::Result<Tree> {
        let absolute = std::path::absolute(root).with_context(|| format!("cannot resolve {}", root.display()))?;
        let Some(key) = absolute.to_str() else { return Tree::scan(root) };
        let path = cache_dir.join(format!("{:016x}.txt", fnv1a(key.as_bytes())));
        if let Some(tree) = fs::read_to_string(&path).ok().and_then(|text| parse(&text, key))
            && tree.is_current(root)
        {
            return Ok(tree);
        }
        let started = SystemTime::now();
        let tree = Tree::scan(root)?;
        let settled = started.checked_sub(Duration::from_secs(RACY_SECONDS)).unwrap_or(SystemTime::UNIX_EPOCH);
        if tree.mtimes().all(|(_, t)| t < settled)
            && let Some(text) = tree.render(key)
        {
            // The list still serves this run if the cache cannot be written (a read-only results folder).
            let _ = write_atomic(&path, text.as_bytes());
        }
        Ok(tree)
    }

    /// Every folder under the root, sorted.
    pub fn dirs(&self) -> impl Iterator<Item = &Path> {
        self.dirs.iter().map(|(d, _)| d.as_path())
    }

    /// The root (as `.`) and every folder, with its modification time at the scan.
    fn mtimes(&self) -> impl Iterator<Item = (&Path, SystemTime)> {
        std::iter::once((Path::new("."), self.root_mtime)).chain(self.dirs.iter().map(|(d, t)| (d.as_path(), *t)))
    }

    /// Whether every folder still has the modification time it had at the scan.
    fn is_current(&self, root: &Path) -> bool {
        self.mtimes().all(|(dir, t)| mtime(&root.join(dir)).is_ok_and(|now| now == t))
    }

    /// The cache file's text; `None` when a name cannot be written in it (not UTF-8, a line break).
    fn render(&self, key: &str) -> Option<String> {
        let mut text = format!("{HEADER}\nroot {key}\n");
        for (dir, t) in self.mtimes() {
            let since = t.duration_since(SystemTime::UNIX_EPOCH).ok()?;
            text += &format!("d {} {} {}\n", since.as_secs(), since.subsec_nanos(), line(dir)?);
        }
        for file in &self.files {
            text += &format!("f {}\n", line(file)?);
        }
        Some(text)
    }
}

/// A relative path as one line of a cache file (`/`-separated), if it can be one.
fn line(path: &Path) -> Option<String> {
    let parts: Option<Vec<&str>> = path.components().map(|c| c.as_os_str().to_str()).collect();
    let text = parts?.join("/");
    (!text.contains(['\n', '\r'])).then_some(text)
}

/// Reads a cache file written for the folder `key`; `None` if it is another folder's or damaged.
fn parse(text: &str, key: &str) -> Option<Tree> {
    let mut lines = text.lines();
    if lines.next()? != HEADER || lines.next()?.strip_prefix("root ")? != key {
        return None;
    }
    let mut root_mtime = None;
    let (mut dirs, mut files) = (Vec::new(), Vec::new());
    for line in lines {
        let relative = |p: &str| {
            let path = PathBuf::from(p);
            path.components().all(|c| matches!(c, Component::Normal(_))).then_some(path)
        };
        match line.split_once(' ')? {
            ("d", rest) => {
                let mut parts = rest.splitn(3, ' ');
                let (secs, nanos, dir) = (parts.next()?.parse().ok()?, parts.next()?.parse().ok()?, parts.next()?);
                let t = SystemTime::UNIX_EPOCH + Duration::new(secs, nanos);
                match (dir, root_mtime) {
                    (".", None) => root_mtime = Some(t),
                    (_, Some(_)) => dirs.push((relative(dir)?, t)),
                    _ => return None,
                }
            }
            ("f", file) => files.push(relative(file)?),
            _ => return None,
        }
    }
    Some(Tree { root_mtime: root_mtime?, dirs, files })
}

fn mtime(dir: &Path) -> anyhow::Result<SystemTime> {
    let meta = fs::metadata(dir).with_context(|| format!("cannot read folder {}", dir.display()))?;
    meta.modified().with_context(|| format!("cannot read the modification time of {}", dir.display()))
}

/// Lists the real (not linked) folders and files under `root/rel` into `tree`, marking each folder in
/// `seen`; symbolic links are collected in `links`, followed only once the real tree is known.
fn walk(root: &Path, rel: &Path, tree: &mut Tree, seen: &mut Walk, links: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let dir = root.join(rel);
    for entry in fs::read_dir(&dir).with_context(|| format!("cannot list folder {}", dir.display()))? {
        let entry = entry.with_context(|| format!("cannot list folder {}", dir.display()))?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let kind = entry.file_type().with_context(|| format!("cannot list folder {}", dir.display()))?;
        let child = rel.join(&name);
        if kind.is_symlink() {
            links.push(child);
        } else if kind.is_dir() {
            seen.first_visit(&entry.path());
            tree.dirs.push((child.clone(), mtime(&entry.path())?));
            walk(root, &child, tree, seen, links)?;
        } else if kind.is_file() && is_image_file(&child) {
            tree.files.push(child);
        }
    }
    Ok(())
}

/// Follows the symbolic links met by [`walk`], after the real tree: a link to a folder already walked
/// (the root, a class folder, an ancestor: a loop) is not followed, so a class folder linked from
/// another class is listed under its own name only; a linked file whose target lies inside the root is
/// listed under its real name only; anything else is listed once. Dangling links, FIFOs, sockets and
/// devices are skipped (reading a FIFO named `x.png` would block forever).
fn follow_links(root: &Path, tree: &mut Tree, seen: &mut Walk, mut links: Vec<PathBuf>) -> anyhow::Result<()> {
    let real_root = fs::canonicalize(root).with_context(|| format!("cannot resolve {}", root.display()))?;
    while let Some(link) = links.pop() {
        let path = root.join(&link);
        let Ok(meta) = fs::metadata(&path) else { continue };
        if meta.is_dir() {
            if seen.first_visit(&path) {
                tree.dirs.push((link.clone(), mtime(&path)?));
                walk(root, &link, tree, seen, &mut links)?;
            }
        } else if meta.is_file() && is_image_file(&link) {
            let inside = fs::canonicalize(&path).is_ok_and(|target| target.starts_with(&real_root));
            if !inside && seen.first_visit(&path) {
                tree.files.push(link);
            }
        }
    }
    Ok(())
}
