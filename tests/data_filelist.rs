//! The cached file list of image folders: written once, used while no folder changes, invalidated by
//! every change to the names under the folder, never written for a folder changed just now, ignored
//! when damaged, and safe with several runs opening the same folder at once.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use image::{Rgb, RgbImage};
use sweep::data::{self, DataConfig, DatasetKind};
use sweep::store::layout::file_lists_dir;

fn config(dir: &Path) -> DataConfig {
    DataConfig {
        kind: DatasetKind::Folder,
        dir: dir.to_path_buf(),
        image_size: 8,
        train_images: 0,
        val_images: 0,
        data_seed: 0,
    }
}

fn save(path: &Path) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    RgbImage::from_pixel(4, 4, Rgb([1, 2, 3])).save(path).unwrap();
}

/// Every folder under `root` (and `root`) gets the modification time `hours_ago` hours ago, as a data
/// set copied in earlier has.
fn age(root: &Path, hours_ago: u64) {
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    let then = SystemTime::UNIX_EPOCH + Duration::from_secs((now / 3600 - hours_ago) * 3600);
    fs::File::open(root).unwrap().set_modified(then).unwrap();
    for entry in fs::read_dir(root).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            age(&path, hours_ago);
        }
    }
}

/// `(split, file, label)` of every image of the data set.
fn listing(ds: &data::DataSet) -> Vec<(&'static str, String, usize)> {
    let mut out = Vec::new();
    for (split, src) in [("train", &ds.train), ("val", &ds.val)] {
        out.extend((0..src.len()).map(|i| (split, src.item_name(i), src.label(i))));
    }
    out
}

fn cache_files(cache: &Path) -> Vec<PathBuf> {
    fs::read_dir(cache).map(|d| d.map(|e| e.unwrap().path()).collect()).unwrap_or_default()
}

/// Opens through the cache and checks the result against a fresh scan.
fn open_cached(root: &Path, cache: &Path) -> Vec<(&'static str, String, usize)> {
    let cached = listing(&data::open_with(&config(root), Some(cache)).unwrap());
    assert_eq!(cached, listing(&data::open(&config(root)).unwrap()), "the cached list is the folder's");
    cached
}

fn names(list: &[(&str, String, usize)]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|(_, f, _)| f.rsplit('/').next().unwrap().to_string()).collect();
    v.sort();
    v
}

/// A change to the data folder.
type Change<'a> = Box<dyn Fn() + 'a>;

#[test]
fn the_list_is_cached_once_and_follows_every_change_of_names() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, cache) = (tmp.path().join("data"), file_lists_dir(&tmp.path().join("results")));
    for i in 0..30 {
        save(&root.join(format!("class{}/img{i:02}.png", i % 3)));
    }
    save(&root.join("class0/nested/deep.png"));
    age(&root, 100);
    let first = open_cached(&root, &cache);
    assert_eq!(first.len(), 31);
    let files = cache_files(&cache);
    assert_eq!(files.len(), 1, "{files:?}");
    let text = fs::read_to_string(&files[0]).unwrap();
    assert!(text.contains("f class0/nested/deep.png") && text.contains("d "), "{text}");

    // The cache is what a later open uses: a file added behind its back (its folder's mtime put back,
    // the documented limit) is not seen until the folder changes.
    save(&root.join("class1/hidden-by-mtime.png"));
    age(&root, 100);
    let stale = listing(&data::open_with(&config(&root), Some(&cache)).unwrap());
    assert_eq!(stale, first);

    // Every change of names is seen. Before each, the folders get a new settled mtime and the cache
    // is rewritten from a fresh scan; then the change alone must invalidate it.
    let steps: Vec<(&str, Change)> = vec![
        ("a new file", Box::new(|| save(&root.join("class2/new.png")))),
        ("a new file in a nested folder", Box::new(|| save(&root.join("class0/nested/deeper.png")))),
        ("a new nested folder", Box::new(|| save(&root.join("class1/a/b/c.png")))),
        ("a deleted file", Box::new(|| fs::remove_file(root.join("class2/img02.png")).unwrap())),
        (
            "a renamed file",
            Box::new(|| fs::rename(root.join("class0/img00.png"), root.join("class0/renamed.png")).unwrap()),
        ),
        ("a new class", Box::new(|| save(&root.join("class3/x.png")))),
    ];
    let mut before = Vec::new();
    for (hours, (what, change)) in (1..).zip(steps) {
        age(&root, hours);
        before = open_cached(&root, &cache);
        let written = fs::read_to_string(&files[0]).unwrap();
        change();
        let after = open_cached(&root, &cache);
        assert_ne!(names(&after), names(&before), "{what} was not seen");
        assert_eq!(fs::read_to_string(&files[0]).unwrap(), written, "{what}: a scan just after a change is not cached");
        before = after;
    }
    assert!(names(&before).contains(&"hidden-by-mtime.png".to_string()), "seen once its folder changed");
    assert!(names(&before).contains(&"renamed.png".to_string()) && !names(&before).contains(&"img00.png".into()));
    assert_eq!(before.iter().filter(|(_, _, l)| *l == 3).count(), 1, "class3 is a class");
    assert_eq!(cache_files(&cache).len(), 1, "one cache file per folder, no temporary files left");
}

#[test]
fn a_folder_changed_just_now_is_not_cached() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, cache) = (tmp.path().join("data"), file_lists_dir(tmp.path()));
    save(&root.join("a/1.png"));
    save(&root.join("b/2.png"));
    // Its folders were written within the last two seconds: a change in the same mtime tick could go
    // unseen, so the scan serves this run and is not kept.
    assert_eq!(open_cached(&root, &cache).len(), 2);
    assert!(cache_files(&cache).is_empty(), "{:?}", cache_files(&cache));
    age(&root, 1);
    open_cached(&root, &cache);
    assert_eq!(cache_files(&cache).len(), 1);
}

#[test]
fn damaged_or_foreign_cache_files_are_ignored_and_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, cache) = (tmp.path().join("data"), file_lists_dir(tmp.path()));
    for i in 0..10 {
        save(&root.join(format!("c{}/{i}.png", i % 2)));
    }
    // train/ and val/ each get their own list.
    let split = tmp.path().join("split");
    for (s, n) in [("train", 6), ("val", 2)] {
        (0..n).for_each(|i| save(&split.join(format!("{s}/c{}/{i}.png", i % 2))));
    }
    age(&root, 1);
    age(&split, 1);
    let good = open_cached(&root, &cache);
    assert_eq!(open_cached(&split, &cache).len(), 8);
    assert_eq!(cache_files(&cache).len(), 3, "root, split/train and split/val");
    let file = cache_files(&cache).into_iter().find(|f| fs::read_to_string(f).unwrap().contains("f c1/9.png")).unwrap();
    let text = fs::read_to_string(&file).unwrap();
    let damaged = [
        "garbage".to_string(),
        text.replace("f c1/9.png", "f ../../etc/passwd"),
        text.replace("root ", "root /elsewhere"),
        text.replace("\nd ", "\nd x "),
        text.lines().take(1).collect::<Vec<_>>().join("\n"),
        text.replace("f c1/9.png\n", "f c1/9.png\nq what\n"),
    ];
    for bad in damaged {
        fs::write(&file, &bad).unwrap();
        assert_eq!(open_cached(&root, &cache), good, "cache file {bad:?}");
        assert_eq!(fs::read_to_string(&file).unwrap(), text, "rewritten after {bad:?}");
    }
}

#[test]
fn runs_opening_one_folder_at_once_agree_and_leave_one_valid_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, cache) = (tmp.path().join("data"), file_lists_dir(tmp.path()));
    for i in 0..400 {
        save(&root.join(format!("class{:02}/sub{}/img{i:03}.png", i % 20, i % 3)));
    }
    age(&root, 1);
    let expected = listing(&data::open(&config(&root)).unwrap());
    std::thread::scope(|s| {
        let handles: Vec<_> =
            (0..8).map(|_| s.spawn(|| listing(&data::open_with(&config(&root), Some(&cache)).unwrap()))).collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), expected);
        }
    });
    assert_eq!(cache_files(&cache).len(), 1, "{:?}", cache_files(&cache));
    assert_eq!(open_cached(&root, &cache), expected);
}
