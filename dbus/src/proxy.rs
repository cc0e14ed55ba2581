//! Client proxies of `org.freedesktop.portable1`, with the v252 signatures.

use std::collections::HashMap;

use zbus::proxy;
use zbus::OwnedObjectPath;

/// One `ListImages` entry: name, type, read-only, creation µs, modification µs, usage, state,
/// object path.
pub type ImageEntry = (String, String, bool, u64, u64, u64, String, OwnedObjectPath);
/// One change: type, path, source.
pub type ChangeEntry = (String, String, String);

#[proxy(
    interface = "org.freedesktop.portable1.Manager",
    default_service = "org.freedesktop.portable1",
    default_path = "/org/freedesktop/portable1"
)]
pub trait Manager {
    fn get_image(&self, image: &str) -> zbus::Result<OwnedObjectPath>;
    fn list_images(&self) -> zbus::Result<Vec<ImageEntry>>;
    #[zbus(name = "GetImageOSRelease")]
    fn get_image_os_release(&self, image: &str) -> zbus::Result<HashMap<String, String>>;
    fn get_image_metadata(
        &self,
        image: &str,
        matches: &[&str],
    ) -> zbus::Result<(String, Vec<u8>, HashMap<String, Vec<u8>>)>;
    #[allow(clippy::type_complexity)]
    fn get_image_metadata_with_extensions(
        &self,
        image: &str,
        extensions: &[&str],
        matches: &[&str],
        flags: u64,
    ) -> zbus::Result<(
        String,
        Vec<u8>,
        HashMap<String, Vec<u8>>,
        HashMap<String, Vec<u8>>,
    )>;
    fn get_image_state(&self, image: &str) -> zbus::Result<String>;
    fn get_image_state_with_extensions(
        &self,
        image: &str,
        extensions: &[&str],
        flags: u64,
    ) -> zbus::Result<String>;
    fn attach_image(
        &self,
        image: &str,
        matches: &[&str],
        profile: &str,
        runtime: bool,
        copy_mode: &str,
    ) -> zbus::Result<Vec<ChangeEntry>>;
    fn attach_image_with_extensions(
        &self,
        image: &str,
        extensions: &[&str],
        matches: &[&str],
        profile: &str,
        copy_mode: &str,
        flags: u64,
    ) -> zbus::Result<Vec<ChangeEntry>>;
    fn detach_image(&self, image: &str, runtime: bool) -> zbus::Result<Vec<ChangeEntry>>;
    fn detach_image_with_extensions(
        &self,
        image: &str,
        extensions: &[&str],
        flags: u64,
    ) -> zbus::Result<Vec<ChangeEntry>>;
    fn reattach_image(
        &self,
        image: &str,
        matches: &[&str],
        profile: &str,
        runtime: bool,
        copy_mode: &str,
    ) -> zbus::Result<(Vec<ChangeEntry>, Vec<ChangeEntry>)>;
    #[allow(clippy::too_many_arguments)]
    fn reattach_image_with_extensions(
        &self,
        image: &str,
        extensions: &[&str],
        matches: &[&str],
        profile: &str,
        copy_mode: &str,
        flags: u64,
    ) -> zbus::Result<(Vec<ChangeEntry>, Vec<ChangeEntry>)>;
    fn remove_image(&self, image: &str) -> zbus::Result<()>;
    fn mark_image_read_only(&self, image: &str, read_only: bool) -> zbus::Result<()>;
    fn set_image_limit(&self, image: &str, limit: u64) -> zbus::Result<()>;
    fn set_pool_limit(&self, limit: u64) -> zbus::Result<()>;

    #[zbus(property)]
    fn pool_path(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn pool_usage(&self) -> zbus::Result<u64>;
    #[zbus(property)]
    fn pool_limit(&self) -> zbus::Result<u64>;
    #[zbus(property)]
    fn profiles(&self) -> zbus::Result<Vec<String>>;
}

#[proxy(
    interface = "org.freedesktop.portable1.Image",
    default_service = "org.freedesktop.portable1"
)]
pub trait Image {
    #[zbus(name = "GetOSRelease")]
    fn get_os_release(&self) -> zbus::Result<HashMap<String, String>>;
    fn get_metadata(
        &self,
        matches: &[&str],
    ) -> zbus::Result<(String, Vec<u8>, HashMap<String, Vec<u8>>)>;
    #[allow(clippy::type_complexity)]
    fn get_metadata_with_extensions(
        &self,
        extensions: &[&str],
        matches: &[&str],
        flags: u64,
    ) -> zbus::Result<(
        String,
        Vec<u8>,
        HashMap<String, Vec<u8>>,
        HashMap<String, Vec<u8>>,
    )>;
    fn get_state(&self) -> zbus::Result<String>;
    fn get_state_with_extensions(&self, extensions: &[&str], flags: u64) -> zbus::Result<String>;
    fn attach(
        &self,
        matches: &[&str],
        profile: &str,
        runtime: bool,
        copy_mode: &str,
    ) -> zbus::Result<Vec<ChangeEntry>>;
    fn attach_with_extensions(
        &self,
        extensions: &[&str],
        matches: &[&str],
        profile: &str,
        copy_mode: &str,
        flags: u64,
    ) -> zbus::Result<Vec<ChangeEntry>>;
    fn detach(&self, runtime: bool) -> zbus::Result<Vec<ChangeEntry>>;
    fn detach_with_extensions(
        &self,
        extensions: &[&str],
        flags: u64,
    ) -> zbus::Result<Vec<ChangeEntry>>;
    fn reattach(
        &self,
        matches: &[&str],
        profile: &str,
        runtime: bool,
        copy_mode: &str,
    ) -> zbus::Result<(Vec<ChangeEntry>, Vec<ChangeEntry>)>;
    fn reattach_with_extensions(
        &self,
        extensions: &[&str],
        matches: &[&str],
        profile: &str,
        copy_mode: &str,
        flags: u64,
    ) -> zbus::Result<(Vec<ChangeEntry>, Vec<ChangeEntry>)>;
    /// v252's spelling (sic) of `ReattachWithExtensions`.
    #[zbus(name = "ReattacheWithExtensions")]
    fn reattache_with_extensions(
        &self,
        extensions: &[&str],
        matches: &[&str],
        profile: &str,
        copy_mode: &str,
        flags: u64,
    ) -> zbus::Result<(Vec<ChangeEntry>, Vec<ChangeEntry>)>;
    fn remove(&self) -> zbus::Result<()>;
    fn mark_read_only(&self, read_only: bool) -> zbus::Result<()>;
    fn set_limit(&self, limit: u64) -> zbus::Result<()>;

    #[zbus(property)]
    fn name(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn path(&self) -> zbus::Result<String>;
    #[zbus(property, name = "Type")]
    fn kind(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn read_only(&self) -> zbus::Result<bool>;
    #[zbus(property)]
    fn creation_timestamp(&self) -> zbus::Result<u64>;
    #[zbus(property)]
    fn modification_timestamp(&self) -> zbus::Result<u64>;
    #[zbus(property)]
    fn usage(&self) -> zbus::Result<u64>;
    #[zbus(property)]
    fn limit(&self) -> zbus::Result<u64>;
    #[zbus(property)]
    fn usage_exclusive(&self) -> zbus::Result<u64>;
    #[zbus(property)]
    fn limit_exclusive(&self) -> zbus::Result<u64>;
}

/// `org.portctl.Manager1`: what portctld offers beyond the v252 interfaces.
#[proxy(
    interface = "org.portctl.Manager1",
    default_service = "org.freedesktop.portable1",
    default_path = "/org/freedesktop/portable1"
)]
pub trait PortctlManager {
    /// Journals of interrupted operations that recovery set aside.
    #[zbus(property)]
    fn set_aside_journals(&self) -> zbus::Result<Vec<String>>;
}

/// `org.portctl.Run1` on the manager object: `portctl run`.
#[proxy(
    interface = "org.portctl.Run1",
    default_service = "org.freedesktop.portable1",
    default_path = "/org/freedesktop/portable1"
)]
pub trait Run1 {
    /// Runs `unit`'s `ExecStart=` (or `command`) from `image` with these standard
    /// descriptors; returns the exit status (128 + N when killed by signal N). `token` names
    /// the run for `kill`. `flags`: [`crate::flags::RunFlags`].
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        image: &str,
        unit: &str,
        command: &[String],
        profile: &str,
        flags: u64,
        token: &str,
        stdin: zbus::Fd<'_>,
        stdout: zbus::Fd<'_>,
        stderr: zbus::Fd<'_>,
    ) -> zbus::Result<i32>;
    /// Sends `signal` to the command of the caller's run `token`.
    fn kill(&self, token: &str, signal: i32) -> zbus::Result<()>;
}

/// The Manager's calls that may need authorization, made with `ALLOW_INTERACTIVE_AUTH` when
/// `interactive` (so that polkit may ask the user through an agent), as portablectl makes
/// them unless `--no-ask-password`.
pub struct Authorized<'a> {
    manager: &'a ManagerProxy<'a>,
    flags: zbus::proxy::MethodFlags,
}

impl<'a> Authorized<'a> {
    pub fn new(manager: &'a ManagerProxy<'a>, interactive: bool) -> Self {
        let flags = if interactive {
            zbus::proxy::MethodFlags::ALLOW_INTERACTIVE_AUTH
        } else {
            zbus::proxy::MethodFlags::empty()
        };
        Self { manager, flags }
    }

    async fn call<B, R>(&self, method: &'static str, body: &B) -> zbus::Result<R>
    where
        B: serde::Serialize + zbus::wire::DynamicType,
        R: for<'d> zbus::wire::DynamicDeserialize<'d>,
    {
        self.manager
            .inner()
            .call_with_flags(method, self.flags, body)
            .await?
            .ok_or(zbus::Error::InvalidReply)
    }

    pub async fn attach_image(
        &self,
        image: &str,
        matches: &[&str],
        profile: &str,
        runtime: bool,
        copy_mode: &str,
    ) -> zbus::Result<Vec<ChangeEntry>> {
        self.call(
            "AttachImage",
            &(image, matches, profile, runtime, copy_mode),
        )
        .await
    }

    pub async fn attach_image_with_extensions(
        &self,
        image: &str,
        extensions: &[&str],
        matches: &[&str],
        profile: &str,
        copy_mode: &str,
        flags: u64,
    ) -> zbus::Result<Vec<ChangeEntry>> {
        self.call(
            "AttachImageWithExtensions",
            &(image, extensions, matches, profile, copy_mode, flags),
        )
        .await
    }

    pub async fn detach_image(&self, image: &str, runtime: bool) -> zbus::Result<Vec<ChangeEntry>> {
        self.call("DetachImage", &(image, runtime)).await
    }

    pub async fn detach_image_with_extensions(
        &self,
        image: &str,
        extensions: &[&str],
        flags: u64,
    ) -> zbus::Result<Vec<ChangeEntry>> {
        self.call("DetachImageWithExtensions", &(image, extensions, flags))
            .await
    }

    pub async fn reattach_image(
        &self,
        image: &str,
        matches: &[&str],
        profile: &str,
        runtime: bool,
        copy_mode: &str,
    ) -> zbus::Result<(Vec<ChangeEntry>, Vec<ChangeEntry>)> {
        self.call(
            "ReattachImage",
            &(image, matches, profile, runtime, copy_mode),
        )
        .await
    }

    pub async fn reattach_image_with_extensions(
        &self,
        image: &str,
        extensions: &[&str],
        matches: &[&str],
        profile: &str,
        copy_mode: &str,
        flags: u64,
    ) -> zbus::Result<(Vec<ChangeEntry>, Vec<ChangeEntry>)> {
        self.call(
            "ReattachImageWithExtensions",
            &(image, extensions, matches, profile, copy_mode, flags),
        )
        .await
    }

    pub async fn remove_image(&self, image: &str) -> zbus::Result<()> {
        self.call("RemoveImage", &(image,)).await
    }

    pub async fn mark_image_read_only(&self, image: &str, read_only: bool) -> zbus::Result<()> {
        self.call("MarkImageReadOnly", &(image, read_only)).await
    }

    pub async fn set_image_limit(&self, image: &str, limit: u64) -> zbus::Result<()> {
        self.call("SetImageLimit", &(image, limit)).await
    }

    pub async fn set_pool_limit(&self, limit: u64) -> zbus::Result<()> {
        self.call("SetPoolLimit", &(limit,)).await
    }
}
