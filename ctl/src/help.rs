//! `portctl --help`: the layout and texts of the portablectl of the systemd portctl speaks as
//! (ctl/src/speak.rs), with portctl's own verbs and options after systemd's. The texts are
//! those portablectl 252, 257 and 262 print (LANG=C.UTF-8), the program's name changed.

use portctl_engine::version::{Behaviour, Version};

/// systemd 252 to 255.
const V252: &str = "\
portctl [OPTIONS...] COMMAND ...

Attach or detach portable services from the local system.

Commands:
  list                        List available portable service images
  attach NAME|PATH [PREFIX...]
                              Attach the specified portable service image
  detach NAME|PATH [PREFIX...]
                              Detach the specified portable service image
  reattach NAME|PATH [PREFIX...]
                              Reattach the specified portable service image
  inspect NAME|PATH [PREFIX...]
                              Show details of specified portable service image
  is-attached NAME|PATH       Query if portable service image is attached
  read-only NAME|PATH [BOOL]  Mark or unmark portable service image read-only
  remove NAME|PATH...         Remove a portable service image
  set-limit [NAME|PATH]       Set image or pool size limit (disk quota)

Options:
  -h --help                   Show this help
     --version                Show package version
     --no-pager               Do not pipe output into a pager
     --no-legend              Do not show the headers and footers
     --no-ask-password        Do not ask for system passwords
  -H --host=[USER@]HOST       Operate on remote host
  -M --machine=CONTAINER      Operate on local container
  -q --quiet                  Suppress informational messages
  -p --profile=PROFILE        Pick security profile for portable service
     --copy=copy|auto|symlink Prefer copying or symlinks if possible
     --runtime                Attach portable service until next reboot only
     --no-reload              Don't reload the system and service manager
     --cat                    When inspecting include unit and os-release file
                              contents
     --enable                 Immediately enable/disable the portable service
                              after attach/detach
     --now                    Immediately start/stop the portable service after
                              attach/before detach
     --no-block               Don't block waiting for attach --now to complete
     --extension=PATH         Extend the image with an overlay
     --force                  Skip 'already active' check when attaching or
                              detaching an image (with extensions)
";

/// What systemd 256 to 261 changed in 252's text: `--copy=` gained `mixed`, `--clean` is
/// listed after `--force`.
const V256_COPY: (&str, &str) = (
    "     --copy=copy|auto|symlink Prefer copying or symlinks if possible\n",
    "     --copy=copy|auto|symlink|mixed\n                              Pick copying or symlinking of resources\n",
);
const CLEAN: &str =
    "     --clean                  When detaching, also remove configuration, state,
                              cache, logs or runtime data of the portable
                              service(s)
";

/// systemd 262: the newer layout (arguments of a verb on a second line).
const V262: &str = "\
> portctl [OPTION…] COMMAND …

Attach or detach portable services in the local system.

Commands:
  [list]                 List available portable service images
  inspect NAME|PATH      Show details of specified portable service image
    [PREFIX…]            
  attach NAME|PATH       Attach the specified portable service image
    [PREFIX…]            
  detach NAME|PATH       Detach the specified portable service image
    [PREFIX…]            
  reattach NAME|PATH     Reattach the specified portable service image
    [PREFIX…]            
  is-attached NAME|PATH  Query if portable service image is attached
  read-only NAME|PATH    Mark or unmark portable service image read-only
    [BOOL]               
  remove NAME|PATH…      Remove a portable service image
  set-limit [NAME|PATH]  Set image or pool size limit (disk quota)
    LIMIT                

Options:
  -h --help              Show this help
     --version           Show package version
     --no-pager          Do not start a pager
     --no-legend         Do not show headers and footers
     --no-ask-password   Do not prompt for password
  -H --host=[USER@]HOST  Operate on remote host
  -M --machine=CONTAINER Operate on local container
  -q --quiet             Suppress informational messages
  -p --profile=PROFILE   Pick security profile for portable service
     --copy=MODE         Pick copying or symlinking of resources (copy, auto,
                         symlink, mixed)
     --runtime           Attach portable service until next reboot only
     --no-reload         Don't reload the system and service manager
     --cat               When inspecting include unit and os-release file
                         contents
     --enable            Immediately enable/disable the portable service after
                         attach/detach
     --now               Immediately start/stop the portable service after
                         attach/before detach
     --no-block          Don't block waiting for attach --now to complete
     --extension=PATH    Extend the image with an overlay
     --force             Skip 'already active' check when attaching or detaching
                         an image (with extensions)
     --clean             When detaching, also remove configuration, state,
                         cache, logs or runtime data of the portable service(s)
";

/// What portctl adds, in the layout of 252's options.
fn additions(version: Version) -> String {
    let mut lines = vec![
        "",
        "portctl's own:",
        "  validate NAME|PATH [PREFIX...]",
        "                              Check an image against the portable-image",
        "                              requirements, offline",
        "  run NAME|PATH [UNIT|-- COMMAND...]",
        "                              Run a unit's command, or a command, from an image",
        "                              without attaching it",
    ];
    let clean = CLEAN.trim_end().lines().collect::<Vec<_>>();
    if !version.has(Behaviour::CopyMixed) {
        lines.extend(clean);
    }
    lines.extend([
        "     --fail-if-detached       is-attached: exit with status 1 when detached",
        "     --json[=pretty|short]    Print machine-readable JSON instead of text",
        "     --bus-address=ADDRESS    Connect to this bus instead of the system bus",
        "     --systemd-version=N      Speak as this systemd version's portablectl",
        "",
        "See the portctl(1) man page for details.",
        "",
    ]);
    lines.join("\n")
}

/// The help text for `version`.
pub fn text(version: Version) -> String {
    let base = if version.has(Behaviour::NewHelpLayout) {
        V262.to_string()
    } else if version.has(Behaviour::CopyMixed) {
        format!("{}{CLEAN}", V252.replace(V256_COPY.0, V256_COPY.1))
    } else {
        V252.to_string()
    };
    format!("{base}{}", additions(version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_layout_lists_every_verb_and_ends_with_the_man_page() {
        for v in [252, 257, 262] {
            let t = text(Version(v));
            for verb in [
                "list",
                "attach",
                "detach",
                "reattach",
                "inspect",
                "is-attached",
                "read-only",
                "remove",
                "set-limit",
                "validate",
                "run",
            ] {
                assert!(
                    t.contains(&format!("  {verb} ")) || t.contains(&format!("[{verb}]")),
                    "{v}: {verb}"
                );
            }
            assert!(
                t.ends_with("See the portctl(1) man page for details.\n"),
                "{v}"
            );
            assert_eq!(t.matches("--clean").count(), 1, "{v}");
        }
        assert!(text(Version(262)).starts_with("> portctl [OPTION…] COMMAND …\n"));
        assert!(text(Version(257)).contains("--copy=copy|auto|symlink|mixed"));
        assert!(text(Version(252)).contains("--copy=copy|auto|symlink Prefer"));
    }
}
