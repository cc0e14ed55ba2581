//! The box tier: systemd as PID 1 in systemd-nspawn boxes (`tests/harness/sdbox`), with
//! portctl installed as users install it (`make install-files`, D-Bus activation of the
//! sandboxed portctld.service) or with systemd's own portabled as the reference. One box per
//! role, shared by the scenarios of that role, booted when a selected scenario first needs it
//! and torn down at the end (its own harness: `harness = false`); a scenario leaves its box as
//! it found it. Scenarios run one at a time. Needs root, loop devices and systemd-nspawn.

mod compat;
mod e2e;
mod installed;
mod refdiff;
mod upstream;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use libtest_mimic::{Arguments, Trial};
use portctl_tests::{Systemd, SystemdBox};

/// What a scenario runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// portctl installed with `make install-files`, portctld started by D-Bus activation.
    Installed,
    /// Nothing of portctl: systemd-portabled serves org.freedesktop.portable1.
    Reference,
    /// A box of the scenario's own (it changes what the box serves as it goes).
    Own,
}

/// One scenario: a name, what it runs in, under which systemd versions, and the test.
pub struct Scenario {
    pub name: &'static str,
    pub role: Role,
    pub versions: &'static [Systemd],
    pub run: fn(&SystemdBox),
}

/// Systemd 252 only (what the scenario checks is 252's).
pub const V252_ONLY: &[Systemd] = &[Systemd::V252];
/// Every systemd the box tier boots.
pub const EVERY_VERSION: &[Systemd] = &Systemd::ALL;

/// The directory of the workspace's binaries (portctl, portctld, the test helpers).
pub fn bin_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_BIN_EXE_portctld"))
        .parent()
        .unwrap()
        .to_path_buf();
    assert!(
        dir.join("portctl").exists(),
        "{} lacks portctl: build the whole workspace first (cargo test --workspace)",
        dir.display()
    );
    dir
}

/// The shared boxes, by role and version.
#[derive(Default)]
struct Boxes(Mutex<HashMap<(Role, Systemd), Arc<SystemdBox>>>);

impl Boxes {
    fn get(&self, role: Role, v: Systemd) -> Arc<SystemdBox> {
        let mut boxes = self.0.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(boxes.entry((role, v)).or_insert_with(|| {
            let n = v.number();
            let b = match role {
                Role::Installed => {
                    let b = SystemdBox::up_version(&format!("box-installed-{n}"), v);
                    b.install_portctl(&bin_dir());
                    b
                }
                Role::Reference => SystemdBox::up_version(&format!("box-reference-{n}"), v),
                Role::Own => unreachable!("own boxes are not shared"),
            };
            Arc::new(b)
        }))
    }

    /// Tears every box down (the last reference to each goes).
    fn down(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// Stops and removes every attachment and image of a shared box.
fn reset(b: &SystemdBox) {
    let _ = b.exec(&[
        "sh",
        "-c",
        "for d in /etc/systemd/system.attached /run/systemd/system.attached; do \
           for u in $(ls $d 2>/dev/null | grep -v '[.]d$'); do systemctl stop $u; done; done; \
         rm -rf /etc/systemd/system.attached /run/systemd/system.attached /etc/portables \
           /run/portables /var/lib/portables/* /var/lib/portctl /run/portctl/journal; \
         systemctl daemon-reload; systemctl reset-failed",
    ]);
}

fn main() {
    let mut args = Arguments::from_args();
    // One box serves many scenarios: one at a time.
    args.test_threads = Some(1);
    let boxes = Arc::new(Boxes::default());
    let mut trials = Vec::new();
    let mut own_boxes = 0;
    for (module, scenarios) in [
        ("installed", installed::scenarios()),
        ("e2e", e2e::scenarios()),
        ("compat", compat::scenarios()),
        ("refdiff", refdiff::scenarios()),
        ("upstream", upstream::scenarios()),
    ] {
        for s in scenarios {
            for &v in s.versions {
                let boxes = Arc::clone(&boxes);
                // Scenarios of 252 keep their names; the others say their version.
                let name = match v {
                    Systemd::V252 => format!("box::{module}::{}", s.name),
                    v => format!("box::{module}::{}::v{}", s.name, v.number()),
                };
                // (Box names become machine names: short.)
                own_boxes += 1;
                let own = format!("box-own{own_boxes}");
                let (role, run) = (s.role, s.run);
                trials.push(Trial::test(name, move || {
                    match role {
                        Role::Own => run(&SystemdBox::up_version(&own, v)),
                        role => {
                            let b = boxes.get(role, v);
                            // A scenario that failed half-way leaves the next one a clean box.
                            let r =
                                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&b)));
                            if r.is_err() {
                                reset(&b);
                            }
                            if let Err(p) = r {
                                std::panic::resume_unwind(p);
                            }
                        }
                    }
                    Ok(())
                }));
            }
        }
    }
    let conclusion = libtest_mimic::run(&args, trials);
    boxes.down();
    conclusion.exit();
}
