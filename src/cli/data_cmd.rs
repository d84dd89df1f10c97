//! `sweep data fetch` (download, verify, unpack) and `sweep data show` (contact sheet and counts).

use std::path::Path;

use super::{CmdResult, FetchArgs, FetchName, ShowArgs};
use crate::data::DatasetKind;
use crate::spec::{Spec, plan};

pub fn fetch(args: FetchArgs) -> CmdResult {
    let kind = match args.name {
        FetchName::Cifar10 => DatasetKind::Cifar10,
        FetchName::Cifar100 => DatasetKind::Cifar100,
    };
    let mirror = args.mirror.or_else(|| std::env::var("SWEEP_CIFAR_MIRROR").ok());
    let folder = crate::data::fetch::fetch(kind, &args.dir, mirror.as_deref())?;
    println!("{} is ready in {}", kind.name(), folder.display());
    println!("use it with: --set dataset={} --set data_dir={}", kind.name(), args.dir.display());
    Ok(())
}

pub fn show(args: ShowArgs) -> CmdResult {
    // The data keys go through the spec machinery, so they are typed and checked like a spec's.
    let text = format!("[sweep]\nname = \"data\"\n[base]\ndataset = {}\n", toml::Value::String(args.dataset.clone()));
    let spec = Spec::from_str(Path::new("<command line>"), text)?;
    let plan = plan(&spec, &args.overrides)?;
    let cfg = &plan.runs[0].settings;
    let data = crate::data::open(&cfg.data)?;
    // Class names are folder names: anything a file system allows.
    print!("{}", crate::terminal::text(&crate::data::show::describe(&data)));
    crate::data::show::contact_sheet(&data, cfg.color_space, args.count, &args.output)?;
    println!(
        "contact sheet (colour | gray, {}): {}",
        cfg.color_space,
        crate::terminal::line(&args.output.display().to_string())
    );
    Ok(())
}
