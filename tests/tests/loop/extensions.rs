//! Raw extension images (root: loop devices).

use portctl_engine::portable::{DetachOptions, Offline, OfflineAs};
use portctl_engine::version::Version;
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
        dropin.contains("\nExtensionImages=/var/lib/portables/app-sq_1.raw\n"),
        "{dropin}"
    );
    // Relaxed: from 257 on for every extension that is an image.
    o.relax_extension_check = true;
    host.reattach(&Offline, "app_1", &o).unwrap();
    let dropin = read(&s, &format!("{A}/app-sq.service.d/20-portable.conf"));
    assert!(
        dropin.contains(
            "\nExtensionImages=/var/lib/portables/app-sq_1.raw:x-systemd.relax-extension-release-check\n"
        ),
        "{dropin}"
    );
    // Up to 256 only when the root is an image, which app_1 (a directory) is not.
    host.reattach(&OfflineAs(Version(252)), "app_1", &o)
        .unwrap();
    let dropin = read(&s, &format!("{A}/app-sq.service.d/20-portable.conf"));
    assert!(
        dropin.ends_with("\nExtensionImages=/var/lib/portables/app-sq_1.raw\n"),
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
