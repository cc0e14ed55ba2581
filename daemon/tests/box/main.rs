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

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use libtest_mimic::{Arguments, Trial};
use portctl_tests::SystemdBox;

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

/// One scenario: a name, what it runs in, and the test.
pub struct Scenario {
    pub name: &'static str,
    pub role: Role,
    pub run: fn(&SystemdBox),
}

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

/// The shared boxes, by role.
#[derive(Default)]
struct Boxes(Mutex<HashMap<Role, Arc<SystemdBox>>>);

impl Boxes {
    fn get(&self, role: Role) -> Arc<SystemdBox> {
        let mut boxes = self.0.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(boxes.entry(role).or_insert_with(|| {
            let b = match role {
                Role::Installed => {
                    let b = SystemdBox::up("box-installed");
                    b.install_portctl(&bin_dir());
                    b
                }
                Role::Reference => SystemdBox::up("box-reference"),
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
    ] {
        for s in scenarios {
            let boxes = Arc::clone(&boxes);
            let name = format!("box::{module}::{}", s.name);
            // (Box names become machine names: short.)
            own_boxes += 1;
            let own = format!("box-own{own_boxes}");
            trials.push(Trial::test(name, move || {
                match s.role {
                    Role::Own => (s.run)(&SystemdBox::up(&own)),
                    role => (s.run)(&boxes.get(role)),
                }
                Ok(())
            }));
        }
    }
    let conclusion = libtest_mimic::run(&args, trials);
    boxes.down();
    conclusion.exit();
}
