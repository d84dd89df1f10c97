//! `sweep colorize` and `sweep eval`: a trained run on photos and on other data sets.

use super::table::Table;
use super::{CmdResult, ColorizeArgs, EvalArgs, Failure};
use crate::infer::TrainedRun;
use crate::infer::colorize::{ColorizeOptions, colorize};
use crate::infer::eval::{Evaluation, eval as eval_run};
use crate::spec::run_config::TaskConfig;
use crate::terminal::line;
use crate::train::open_device;

/// A path as the terminal shows it (file names may hold anything).
fn shown(path: &std::path::Path) -> String {
    line(&path.display().to_string()).into_owned()
}

pub fn colorize_cmd(args: ColorizeArgs) -> CmdResult {
    let device = open_device(args.device)?;
    let run = TrainedRun::load(&args.run, &args.checkpoint, &device)?;
    let opts = ColorizeOptions {
        output: args.output.clone(),
        temperature: args.temperature.map(|t| t as f32),
        size: args.size,
        compare: args.compare,
        force: args.force,
    };
    if opts.temperature.is_some() && !matches!(run.run.settings.task, TaskConfig::Classification(_)) {
        eprintln!("warning: --temperature only changes classification runs; this run regresses chroma");
    }
    if let Some(warning) = run.unfinished_warning() {
        eprintln!("warning: {}", line(&warning));
    }
    let report = colorize(&run, &args.inputs, &opts)?;
    let n = report.written.len();
    println!(
        "colorized {n} image{} in {:.1} s ({:.2} images/s) with run {} ({}), {}",
        if n == 1 { "" } else { "s" },
        report.seconds,
        n as f64 / report.seconds.max(1e-9),
        run.run.id,
        line(&run.run.variant),
        run.checkpoint_note()
    );
    if n == 1 {
        println!("wrote {}", shown(&report.written[0]));
    } else if n > 1 {
        println!("outputs under {}", shown(&args.output));
    }
    if !report.skipped_existing.is_empty() {
        eprintln!(
            "skipped {} existing output(s) in the output folder (use --force to overwrite), e.g. {}",
            report.skipped_existing.len(),
            shown(&report.skipped_existing[0])
        );
    }
    for path in &report.skipped_unsupported {
        eprintln!("skipped {}: not a JPEG or PNG image", shown(path));
    }
    if !report.errors.is_empty() {
        for (path, reason) in &report.errors {
            eprintln!("could not colorize {}: {}", shown(path), line(reason));
        }
        return Err(Failure {
            code: 1,
            error: anyhow::anyhow!("{} input(s) could not be colorized", report.errors.len()),
        });
    }
    Ok(())
}

pub fn eval_cmd(args: EvalArgs) -> CmdResult {
    let device = open_device(args.device)?;
    let run = TrainedRun::load(&args.run, &args.checkpoint, &device)?;
    let mut overrides = vec![format!("dataset={}", args.dataset)];
    if let Some(dir) = &args.data_dir {
        overrides.push(format!("data_dir={}", dir.display()));
    }
    overrides.extend(args.overrides.iter().cloned());
    if let Some(warning) = run.unfinished_warning() {
        eprintln!("warning: {}", line(&warning));
    }
    let Evaluation { result, kept, val_images } = eval_run(&run, &overrides)?;
    let images = match val_images {
        0 => format!("{} validation images: the whole split", result.images),
        cap => format!("{} validation images: val_images = {cap}", result.images),
    };
    let from = result.data_dir.as_ref().map_or(String::new(), |d| format!(" in {d}"));
    println!(
        "{}\n",
        line(&format!(
            "run {} ({}), {}, on {}{from} ({images})",
            result.run,
            result.variant,
            run.checkpoint_note(),
            result.dataset
        ))
    );
    let mut table = Table::new(["metric", "value"]).align_right(1);
    for (name, value) in result.rows() {
        table.row([name.to_string(), format!("{value:.4}")]);
    }
    print!("{}", table.render());
    println!("\nkept in {}", shown(&kept));
    if let Some(out) = &args.output {
        let bytes = match out.extension().and_then(|e| e.to_str()) {
            Some("json") => serde_json::to_vec_pretty(&result).map_err(anyhow::Error::from)?,
            Some("csv") => {
                let mut text = String::from("metric,value\n");
                for (name, value) in result.rows() {
                    text.push_str(&format!("{name},{value}\n"));
                }
                text.into_bytes()
            }
            _ => return Err(anyhow::anyhow!("-o {}: give a .csv or .json file", out.display()).into()),
        };
        crate::atomic::write_atomic(out, &bytes)?;
        println!("wrote {}", shown(out));
    }
    Ok(())
}
