//! `org.freedesktop.portable1.Image` at `/org/freedesktop/portable1/image/<escaped name>`: the
//! Manager's operations on one image, which each call resolves again by name and then works on
//! by path, as v252 does.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use portctl_dbus::error::PortableError;
use portctl_engine::Image;
use zbus::message::Header;
use zbus::{interface, Connection};

use crate::ops::{runtime_flags, Call, Changes, Target};
use crate::state::State;

pub struct ImageObject {
    pub name: String,
    pub state: Arc<State>,
}

impl ImageObject {
    async fn image(&self) -> Result<Image, PortableError> {
        let name = self.name.clone();
        self.state
            .blocking(move |h, pid1| {
                let image = h.find_image_by_name(&name)?;
                Ok(h.as_version_reports(portctl_engine::portable::behave_as(pid1), image))
            })
            .await
    }
}

#[interface(name = "org.freedesktop.portable1.Image")]
impl ImageObject {
    #[zbus(name = "GetOSRelease", out_args("os_release"))]
    async fn get_os_release(
        &self,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<HashMap<String, String>, PortableError> {
        Call::new(&self.state, conn, &hdr)
            .os_release(Target::Object(self.name.clone()))
            .await
    }

    #[zbus(out_args("image", "os_release", "units"))]
    async fn get_metadata(
        &self,
        matches: Vec<String>,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(String, Vec<u8>, BTreeMap<String, Vec<u8>>), PortableError> {
        Call::new(&self.state, conn, &hdr)
            .metadata_v252(Target::Object(self.name.clone()), matches)
            .await
    }

    #[zbus(out_args("image", "os_release", "extensions", "units"))]
    async fn get_metadata_with_extensions(
        &self,
        extensions: Vec<String>,
        matches: Vec<String>,
        flags: u64,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<
        (
            String,
            Vec<u8>,
            BTreeMap<String, Vec<u8>>,
            BTreeMap<String, Vec<u8>>,
        ),
        PortableError,
    > {
        Call::new(&self.state, conn, &hdr)
            .metadata(
                Target::Object(self.name.clone()),
                extensions,
                matches,
                flags,
            )
            .await
    }

    #[zbus(out_args("state"))]
    async fn get_state(
        &self,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<String, PortableError> {
        Call::new(&self.state, conn, &hdr)
            .state(Target::Object(self.name.clone()), Vec::new(), 0)
            .await
    }

    #[zbus(out_args("state"))]
    async fn get_state_with_extensions(
        &self,
        extensions: Vec<String>,
        flags: u64,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<String, PortableError> {
        Call::new(&self.state, conn, &hdr)
            .state(Target::Object(self.name.clone()), extensions, flags)
            .await
    }

    #[zbus(out_args("changes"))]
    async fn attach(
        &self,
        matches: Vec<String>,
        profile: String,
        runtime: bool,
        copy_mode: String,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<Changes, PortableError> {
        Call::new(&self.state, conn, &hdr)
            .attach(
                Target::Object(self.name.clone()),
                Vec::new(),
                matches,
                profile,
                copy_mode,
                runtime_flags(runtime),
            )
            .await
    }

    #[zbus(out_args("changes"))]
    #[allow(clippy::too_many_arguments)]
    async fn attach_with_extensions(
        &self,
        extensions: Vec<String>,
        matches: Vec<String>,
        profile: String,
        copy_mode: String,
        flags: u64,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<Changes, PortableError> {
        Call::new(&self.state, conn, &hdr)
            .attach(
                Target::Object(self.name.clone()),
                extensions,
                matches,
                profile,
                copy_mode,
                flags,
            )
            .await
    }

    #[zbus(out_args("changes"))]
    async fn detach(
        &self,
        runtime: bool,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<Changes, PortableError> {
        Call::new(&self.state, conn, &hdr)
            .detach(
                Target::Object(self.name.clone()),
                Vec::new(),
                runtime_flags(runtime),
            )
            .await
    }

    #[zbus(out_args("changes"))]
    async fn detach_with_extensions(
        &self,
        extensions: Vec<String>,
        flags: u64,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<Changes, PortableError> {
        Call::new(&self.state, conn, &hdr)
            .detach(Target::Object(self.name.clone()), extensions, flags)
            .await
    }

    #[zbus(out_args("changes_removed", "changes_updated"))]
    #[allow(clippy::too_many_arguments)]
    async fn reattach(
        &self,
        matches: Vec<String>,
        profile: String,
        runtime: bool,
        copy_mode: String,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(Changes, Changes), PortableError> {
        Call::new(&self.state, conn, &hdr)
            .reattach(
                Target::Object(self.name.clone()),
                Vec::new(),
                matches,
                profile,
                copy_mode,
                runtime_flags(runtime),
            )
            .await
    }

    /// The v252 wire name (sic), which v252 itself could not serve (docs/compatibility.md).
    #[zbus(
        name = "ReattacheWithExtensions",
        out_args("changes_removed", "changes_updated")
    )]
    #[allow(clippy::too_many_arguments)]
    async fn reattache_with_extensions(
        &self,
        extensions: Vec<String>,
        matches: Vec<String>,
        profile: String,
        copy_mode: String,
        flags: u64,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(Changes, Changes), PortableError> {
        self.reattach_with_extensions(extensions, matches, profile, copy_mode, flags, conn, hdr)
            .await
    }

    /// The v254 spelling.
    #[zbus(out_args("changes_removed", "changes_updated"))]
    #[allow(clippy::too_many_arguments)]
    async fn reattach_with_extensions(
        &self,
        extensions: Vec<String>,
        matches: Vec<String>,
        profile: String,
        copy_mode: String,
        flags: u64,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(Changes, Changes), PortableError> {
        Call::new(&self.state, conn, &hdr)
            .reattach(
                Target::Object(self.name.clone()),
                extensions,
                matches,
                profile,
                copy_mode,
                flags,
            )
            .await
    }

    async fn remove(
        &self,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(), PortableError> {
        Call::new(&self.state, conn, &hdr)
            .remove(Target::Object(self.name.clone()))
            .await
    }

    async fn mark_read_only(
        &self,
        read_only: bool,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(), PortableError> {
        Call::new(&self.state, conn, &hdr)
            .mark_read_only(Target::Object(self.name.clone()), read_only)
            .await
    }

    async fn set_limit(
        &self,
        limit: u64,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(), PortableError> {
        Call::new(&self.state, conn, &hdr)
            .set_limit(Target::Object(self.name.clone()), limit)
            .await
    }

    #[zbus(property(emits_changed_signal = "false"), name = "Name")]
    async fn name(&self) -> Result<String, PortableError> {
        Ok(self.image().await?.name)
    }

    #[zbus(property(emits_changed_signal = "false"), name = "Path")]
    async fn path_property(&self) -> Result<String, PortableError> {
        Ok(self.image().await?.path.display().to_string())
    }

    #[zbus(property(emits_changed_signal = "false"), name = "Type")]
    async fn kind(&self) -> Result<String, PortableError> {
        Ok(self.image().await?.kind.as_str().to_string())
    }

    #[zbus(property(emits_changed_signal = "false"), name = "ReadOnly")]
    async fn read_only(&self) -> Result<bool, PortableError> {
        Ok(self.image().await?.read_only)
    }

    #[zbus(property(emits_changed_signal = "false"), name = "CreationTimestamp")]
    async fn creation_timestamp(&self) -> Result<u64, PortableError> {
        Ok(self.image().await?.crtime_usec)
    }

    #[zbus(
        property(emits_changed_signal = "false"),
        name = "ModificationTimestamp"
    )]
    async fn modification_timestamp(&self) -> Result<u64, PortableError> {
        Ok(self.image().await?.mtime_usec)
    }

    #[zbus(property(emits_changed_signal = "false"), name = "Usage")]
    async fn usage(&self) -> Result<u64, PortableError> {
        Ok(self.image().await?.usage)
    }

    #[zbus(property(emits_changed_signal = "false"), name = "Limit")]
    async fn limit(&self) -> Result<u64, PortableError> {
        Ok(self.image().await?.limit)
    }

    #[zbus(property(emits_changed_signal = "false"), name = "UsageExclusive")]
    async fn usage_exclusive(&self) -> Result<u64, PortableError> {
        Ok(self.image().await?.usage_exclusive)
    }

    #[zbus(property(emits_changed_signal = "false"), name = "LimitExclusive")]
    async fn limit_exclusive(&self) -> Result<u64, PortableError> {
        Ok(self.image().await?.limit_exclusive)
    }
}
