//! `portctl validate IMAGE [PREFIX...]`: the compliance report, offline.

use std::path::PathBuf;
use std::process::ExitCode;

use portctl_engine::compliance::{self, Report, Status};
use portctl_engine::parse::text::cescape;
use portctl_engine::version::Version;
use portctl_engine::Host;
use serde::Serialize;

use crate::JsonFormat;

#[derive(clap::Args)]
pub struct Args {
    /// An image name (looked up in the search path) or a path to an image.
    image: String,
    /// Unit name prefixes; by default PORTABLE_PREFIXES= of the image, else the image name cut
    /// at the first '_'.
    prefixes: Vec<String>,
    /// Create what a writable image lacks (mount points, resolv.conf, machine-id)
    #[arg(long)]
    fix: bool,
    /// Look at the host (search path, profiles) under this root directory.
    #[arg(long, value_name = "DIR", default_value = "/")]
    root: PathBuf,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    compliant: bool,
    #[serde(flatten)]
    report: &'a Report,
}

pub fn run(cli: &crate::Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let host = Host::new(&args.root)
        .map_err(|e| anyhow::anyhow!("Cannot open root directory {}: {e}", args.root.display()))?;
    let image_arg = crate::verbs::determine_image(&args.image, false)?;
    let image = host.find_image(&image_arg)?;
    // The systemd that will start the units: as asked, else the one installed on the host.
    let version = cli
        .systemd_version
        .or_else(|| host.installed_systemd())
        .unwrap_or(Version::NEWEST)
        .behave_as();
    let profile = host.service_profile_as(&cli.profile, version)?;
    let opened = host.open_image_with(&image, false)?;
    let matches = (!args.prefixes.is_empty()).then_some(args.prefixes.as_slice());
    let check = |root: &portctl_engine::ImageRoot| {
        compliance::check_image(&compliance::Request {
            host: &host,
            image: &image,
            root,
            profile: &profile,
            matches,
            writable: opened.can_write,
            layout: &opened.layout,
            version,
        })
    };
    let mut report = check(&opened.root);
    if args.fix && !report.missing.is_empty() {
        if !opened.can_write {
            anyhow::bail!(
                "Image '{}' is read-only: the missing paths must be added when it is built.",
                image.path.display()
            );
        }
        let rw = host.open_image_with(&image, true)?;
        for c in compliance::repair(&rw.root, &report.missing)? {
            if !cli.quiet {
                eprintln!(
                    "{} {}",
                    if c.kind == compliance::RepairKind::Mkdir {
                        "Created directory"
                    } else {
                        "Created file"
                    },
                    c.path.display()
                );
            }
        }
        drop(rw);
        let again = host.open_image_with(&image, false)?;
        report = check(&again.root);
    }
    match cli.json {
        Some(format) => {
            let value = JsonReport {
                compliant: report.compliant(),
                report: &report,
            };
            let text = match format {
                JsonFormat::Pretty => serde_json::to_string_pretty(&value)?,
                JsonFormat::Short => serde_json::to_string(&value)?,
            };
            println!("{text}");
        }
        None => print_human(&report),
    }
    Ok(if report.compliant() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn status_word(s: Status) -> &'static str {
    match s {
        Status::Ok => "ok",
        Status::Repairable => "repairable",
        Status::Failed => "FAILED",
        Status::Warning => "warning",
    }
}

fn print_human(r: &Report) {
    let profile_where = match &r.profile.path {
        Some(p) => p.display().to_string(),
        None => "built-in copy".into(),
    };
    println!(
        "Image:    {} ({}, {})",
        r.image.path.display(),
        r.image.kind,
        if r.writable { "writable" } else { "read-only" }
    );
    println!("Profile:  {} ({profile_where})", r.profile.name);
    println!("Prefixes: {}", r.matches.join(" "));
    println!();
    println!("{:<3} {:<13} {:<11} DETAILS", "#", "RULE", "RESULT");
    let mut checks: Vec<_> = r.checks.iter().collect();
    checks.sort_by_key(|c| c.number);
    for c in checks {
        // Details quote the image (its PRETTY_NAME, say): control characters escaped.
        let escaped: Vec<String> = c.details.iter().map(|d| cescape(d)).collect();
        let mut details = escaped.iter();
        println!(
            "{:<3} {:<13} {:<11} {}",
            c.number,
            c.rule,
            status_word(c.status),
            details.next().map(String::as_str).unwrap_or(c.title)
        );
        for d in details {
            println!("{:<29} {d}", "");
        }
    }
    println!();
    if r.compliant() {
        if r.missing.is_empty() {
            println!("{}: compliant.", r.image.name);
        } else {
            println!(
                "{}: compliant; attach creates the {} missing path(s) in the writable image.",
                r.image.name,
                r.missing.len()
            );
        }
    } else {
        let failed = r
            .checks
            .iter()
            .filter(|c| c.status == Status::Failed)
            .count();
        println!("{}: NOT compliant, {failed} rule(s) failed.", r.image.name);
        if !r.writable && !r.missing.is_empty() {
            println!("The image is read-only, so these must be added when it is built:");
            for m in &r.missing {
                let kind = match m.kind {
                    portctl_engine::profile::PathKind::Directory => "directory",
                    portctl_engine::profile::PathKind::File => "file",
                };
                println!("  {} ({kind})", m.path);
            }
        }
    }
}
