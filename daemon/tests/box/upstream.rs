//! Upstream's own integration test of portable services, TEST-29-PORTABLE of the box's systemd
//! (Debian's package systemd-tests of that suite), as an acceptance test: the way youki runs
//! its suite against runc. `tests/harness/test29` runs its scripts step by step in a fresh box,
//! three times: against systemd's own portabled and portablectl (the reference), against the
//! installed portctld with systemd's portablectl, and against portctld with portctl as the
//! client. Every step that passes with the reference must pass with portctl. The harness says
//! what it cannot run here (no dm-verity: the `signed+` policy steps fail for the reference too).

use std::collections::BTreeMap;
use std::path::Path;

use portctl_tests::{Systemd, SystemdBox};

use crate::{bin_dir, Role, Scenario};

pub fn scenarios() -> Vec<Scenario> {
    vec![Scenario {
        name: "test29_portable_passes_where_the_reference_passes",
        role: Role::Own,
        versions: &[Systemd::V257, Systemd::V262],
        run: test29_portable_passes_where_the_reference_passes,
    }]
}

/// Steps of upstream's test that portctl does not pass yet, by version and configuration
/// ("daemon": portablectl against portctld; "client": portctl against portctld), as
/// `SCRIPT:LINE` of that version's scripts (docs/compatibility.md, "Not yet done").
const NOT_YET: &[(u32, &str, &str)] = &[];

/// Runs the harness in `b` and returns its steps: `SCRIPT:LINE` → (passed, command).
fn steps(b: &SystemdBox, client: Option<&str>) -> BTreeMap<String, (bool, String)> {
    // The box sees the repository at the same path.
    let harness = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/harness/test29");
    let mut cmd = vec![harness.to_str().unwrap(), "/var/tmp/test29"];
    if let Some(c) = client {
        cmd.extend(["--client", c]);
    }
    let out = b.exec(&cmd);
    let root = b.root();
    let text = std::fs::read_to_string(root.join("var/tmp/test29/steps")).unwrap_or_else(|e| {
        panic!(
            "test29 left no steps ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(root.join("var/tmp/test29/log")).unwrap_or_default()
        )
    });
    text.lines()
        .filter_map(|l| {
            let mut w = l.splitn(3, ' ');
            let (step, result, command) = (w.next()?, w.next()?, w.next().unwrap_or(""));
            Some((step.to_string(), (result == "PASS", command.to_string())))
        })
        .collect()
}

fn test29_portable_passes_where_the_reference_passes(first: &SystemdBox) {
    let v = first.systemd();
    let n = v.number();
    let reference = steps(first, None);
    // The reference must have run the whole test, not stopped early.
    let failed: Vec<_> = reference.iter().filter(|(_, (ok, _))| !ok).collect();
    assert!(
        reference.len() > 200 && failed.len() <= 5,
        "the reference ran {} steps, {} failed: {failed:?}",
        reference.len(),
        failed.len()
    );
    let mut differ = Vec::new();
    let mut fixed = Vec::new();
    for (config, client) in [("daemon", None), ("client", Some("portctl"))] {
        let b = SystemdBox::up_version(&format!("box-t29-{config}-{n}"), v);
        b.install_portctl(&bin_dir());
        let ours = steps(&b, client);
        for (step, (ok, command)) in &reference {
            let known = NOT_YET
                .iter()
                .any(|(kv, kc, ks)| *kv == n && *kc == config && ks == step);
            match ours.get(step) {
                Some((true, _)) if known => fixed.push(format!("{config} {step}")),
                Some((true, _)) => {}
                _ if !ok || known => {}
                Some((false, _)) => differ.push(format!("{config}: {step} fails: {command}")),
                None => differ.push(format!("{config}: {step} never ran: {command}")),
            }
        }
        if !differ.is_empty() {
            differ.push(format!(
                "--- portctld ({config}):\n{}",
                b.journal("portctld.service")
            ));
        }
    }
    assert!(
        differ.is_empty(),
        "systemd {n}: steps that pass with systemd-portabled and not with portctl:\n{}",
        differ.join("\n")
    );
    assert!(
        fixed.is_empty(),
        "systemd {n}: steps listed in NOT_YET pass now, remove them: {fixed:?}"
    );
}
