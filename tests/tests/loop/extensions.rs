//! Raw extension images (root: loop devices).

use portctl_engine::portable::{DetachOptions, Offline};
use portctl_tests::engine::extensions::*;
use portctl_tests::mkextension;

#[test]
fn raw_extensions_and_the_relax_flag() {
    let (s, host) = setup();
    mkextension(
        &s.join("/var/lib/portables/app-sq_1.raw"),
        "squashfs",
        &["app-sq.service"],
        "",
    );
    let mut o = opts(&["app"], &["/var/lib/portables/app-sq_1.raw"]);
    host.attach(&Offline, "app_1", &o).unwrap();
    let dropin = read(&s, &format!("{A}/app-sq.service.d/20-portable.conf"));
    assert!(
        dropin.ends_with("ExtensionImages=/var/lib/portables/app-sq_1.raw\n"),
        "{dropin}"
    );
    o.relax_extension_check = true;
    host.reattach(&Offline, "app_1", &o).unwrap();
    let dropin = read(&s, &format!("{A}/app-sq.service.d/20-portable.conf"));
    assert!(
        dropin.ends_with(
            "ExtensionImages=/var/lib/portables/app-sq_1.raw:x-systemd.relax-extension-release-check\n"
        ),
        "{dropin}"
    );
    host.detach(
        &Offline,
        "app_1",
        &DetachOptions {
            extensions: vec!["/var/lib/portables/app-sq_1.raw".into()],
            runtime: false,
            force: false,
        },
    )
    .unwrap();
    assert!(!s.join(A).exists());
}
