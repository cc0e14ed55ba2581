//! Helpers of the engine's integration tests (tests/tests/fs and tests/tests/loop), shared by
//! the root-free and the root tier of each subject.
#![allow(dead_code)]

/// Helpers of the attach tests.
pub mod attach {

    use crate::{attach_host, mkimage, Scratch};
    use portctl_engine::portable::{AttachOptions, CopyMode, ServiceManager};
    use portctl_engine::Host;

    pub fn opts(profile: &str, runtime: bool, copy: CopyMode) -> AttachOptions {
        AttachOptions {
            matches: vec!["minimal".into()],
            profile: profile.into(),
            runtime,
            copy,
            force: false,
            extensions: Vec::new(),
            relax_extension_check: false,
        }
    }

    pub const STATE_DIRS: [&str; 5] = [
        "/etc/systemd/system.attached",
        "/run/systemd/system.attached",
        "/etc/portables",
        "/run/portables",
        "/var/lib/portables",
    ];

    pub fn setup() -> (Scratch, Host) {
        let s = Scratch::new();
        let host = attach_host(&s);
        mkimage(&s.join("/var/lib/portables/minimal_1"), &[]);
        (s, host)
    }

    pub struct Active(pub &'static str);

    impl ServiceManager for Active {
        fn is_active(&self, unit: &str) -> Result<bool, String> {
            Ok(unit == self.0)
        }
    }
}

/// Helpers of the compliance tests.
pub mod compliance {
    use crate::{make_tree, mkimage, Node, Scratch};
    use portctl_engine::compliance::{check_image, Report, Request, Status};
    use portctl_engine::Host;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

    /// The scratch host gets the files the profiles bind from the host.
    pub fn host(s: &Scratch) -> Host {
        make_tree(
            s.path(),
            &[
                Node::File("/etc/machine-id", "0123456789abcdef0123456789abcdef\n"),
                Node::File("/etc/resolv.conf", "nameserver 127.0.0.1\n"),
                Node::Dir("/run"),
                Node::Dir("/images"),
            ],
        );
        s.host()
    }

    pub fn report(host: &Host, image: &str, profile: &str, matches: Option<&[String]>) -> Report {
        let image = host.find_image(image).unwrap();
        let opened = host.open_image_with(&image, false).unwrap();
        let root = opened.root;
        let profile = host.service_profile(profile).unwrap();
        check_image(&Request {
            host,
            image: &image,
            root: &root,
            profile: &profile,
            matches,
            writable: opened.can_write,
            layout: &opened.layout,
            version: portctl_engine::version::Version(252),
        })
    }

    pub fn status(r: &Report, rule: &str) -> Status {
        r.checks.iter().find(|c| c.rule == rule).unwrap().status
    }

    pub fn details(r: &Report, rule: &str) -> String {
        r.checks
            .iter()
            .find(|c| c.rule == rule)
            .unwrap()
            .details
            .join("\n")
    }

    pub fn sample(s: &Scratch, name: &str, args: &[&str]) -> String {
        mkimage(&s.join(format!("/images/{name}")), args);
        format!("/images/{name}")
    }

    pub fn set_exec(s: &Scratch, img: &str, program: &str, content: &[u8], mode: u32) {
        let p: PathBuf = s.join(format!("{img}{program}"));
        fs::write(&p, content).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    }
}

/// Helpers of the discovery tests.
pub mod discovery {

    use portctl_engine::ImageType;

    pub fn names(host: &portctl_engine::Host) -> Vec<(String, ImageType, String)> {
        host.list_images()
            .unwrap()
            .into_iter()
            .map(|i| (i.name, i.kind, i.path.display().to_string()))
            .collect()
    }
}

/// Helpers of the extensions tests.
pub mod extensions {
    use crate::{attach_host, mkextension, mkimage, Scratch};
    use portctl_engine::portable::{AttachOptions, CopyMode};
    use portctl_engine::Host;
    use std::fs;

    pub const A: &str = "/etc/systemd/system.attached";

    pub fn opts(matches: &[&str], extensions: &[&str]) -> AttachOptions {
        AttachOptions {
            matches: matches.iter().map(|m| m.to_string()).collect(),
            profile: "default".into(),
            runtime: false,
            copy: CopyMode::Auto,
            force: false,
            extensions: extensions.iter().map(|e| e.to_string()).collect(),
            relax_extension_check: false,
        }
    }

    /// A root `app_1` (unit app-test.service) and a directory extension `app-ext_1` with
    /// app-ext.service and its own app-test.service (which the root's wins over).
    pub fn setup() -> (Scratch, Host) {
        let s = Scratch::new();
        let host = attach_host(&s);
        mkimage(&s.join("/var/lib/portables/app_1"), &["--prefix", "app"]);
        mkextension(
            &s.join("/var/lib/portables/app-ext_1"),
            "dir",
            &["app-ext.service", "app-test.service"],
            "",
        );
        (s, host)
    }

    pub fn read(s: &Scratch, p: &str) -> String {
        fs::read_to_string(s.join(p)).unwrap()
    }
}

/// Helpers of the security tests.
pub mod security {
    use std::fs;

    use crate::{attach_host, mkimage, Scratch};
    use portctl_engine::portable::{AttachOptions, CopyMode};
    use portctl_engine::Host;

    pub fn opts(matches: &[&str], profile: &str) -> AttachOptions {
        AttachOptions {
            matches: matches.iter().map(|m| m.to_string()).collect(),
            profile: profile.into(),
            runtime: false,
            copy: CopyMode::Auto,
            force: false,
            extensions: Vec::new(),
            relax_extension_check: false,
        }
    }

    pub const STATE: [&str; 3] = [
        "/etc/systemd/system.attached",
        "/etc/portables",
        "/var/lib/portables",
    ];

    /// A host with the sample image `app_1` whose unit `app-test.service` gets `extra` in its
    /// `[Service]` section (and `install` as its `[Install]` section).
    pub fn app_image(s: &Scratch, extra: &str, install: &str) -> Host {
        let host = attach_host(s);
        let img = mkimage(&s.join("/var/lib/portables/app_1"), &[]);
        fs::write(
            img.join("usr/lib/systemd/system/app-test.service"),
            format!("[Service]\nExecStart=/usr/bin/minimald\n{extra}\n[Install]\n{install}\n"),
        )
        .unwrap();
        host
    }
}
