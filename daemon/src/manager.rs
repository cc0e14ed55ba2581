//! `org.freedesktop.portable1.Manager` at `/org/freedesktop/portable1`: one-line adapters to
//! the engine (see ops.rs), with v252's names and signatures.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use portctl_dbus::error::{self as names, PortableError};
use portctl_dbus::path::image_object_path;
use portctl_engine::host::POOL_PATH;
use portctl_engine::parse::names::{parse_image_ref, ImageRef};
use zbus::message::Header;
use zbus::{interface, Connection, ObjectServer, OwnedObjectPath};

use crate::image::ImageObject;
use crate::introspect::Unlisted;
use crate::ops::{runtime_flags, Call, Changes, Target};
use crate::state::State;

pub struct Manager {
    pub state: Arc<State>,
}

type ImageRow = (String, String, bool, u64, u64, u64, String, OwnedObjectPath);

/// Exports the objects of `names` and drops those of images that are gone (`complete` says
/// that `names` lists every image).
pub async fn sync_image_objects(
    state: &Arc<State>,
    server: &ObjectServer,
    names: &[String],
    complete: bool,
) {
    let (add, gone): (Vec<String>, Vec<String>) = {
        let exported = state.exported.lock().unwrap_or_else(|e| e.into_inner());
        let add = names
            .iter()
            .filter(|n| !exported.contains(*n))
            .cloned()
            .collect();
        let gone = if complete {
            let listed: std::collections::HashSet<&String> = names.iter().collect();
            exported
                .iter()
                .filter(|n| !listed.contains(n))
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        (add, gone)
    };
    let unlisted = if add.is_empty() {
        ""
    } else {
        state.unlisted_reattach().await
    };
    for name in add {
        let path = image_object_path(&name);
        let obj = Unlisted {
            inner: ImageObject {
                name: name.clone(),
                state: Arc::clone(state),
            },
            method: unlisted,
        };
        match server.at(path.as_str(), obj).await {
            Ok(_) => {
                state
                    .exported
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(name);
            }
            Err(e) => tracing::warn!(image = %name, "cannot export image object: {e}"),
        }
    }
    for name in gone {
        let path = image_object_path(&name);
        let _ = server
            .remove::<Unlisted<ImageObject>, _>(path.as_str())
            .await;
        state
            .exported
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&name);
    }
}

/// `GetImage`: the object of an image found by name (not by path, as v252), exported first.
async fn get_image(
    state: &Arc<State>,
    server: &ObjectServer,
    image: String,
) -> Result<OwnedObjectPath, PortableError> {
    let _op = state.begin();
    if let Ok(ImageRef::Path(_)) = parse_image_ref(&image) {
        return Err(PortableError::new(
            names::INVALID_ARGS,
            format!("Expected image name, not path in place of '{image}'."),
        ));
    }
    let name = image.clone();
    let found = state
        .blocking(move |h, _| h.find_image_by_name(&name))
        .await?;
    sync_image_objects(state, server, std::slice::from_ref(&found.name), false).await;
    Ok(OwnedObjectPath::try_from(image_object_path(&found.name)).expect("escaped object path"))
}

/// `ListImages`: every image with its state; exports their objects and drops those of images
/// that are gone.
async fn list_images(
    state: &Arc<State>,
    server: &ObjectServer,
) -> Result<Vec<ImageRow>, PortableError> {
    let _op = state.begin();
    let rows = state
        .blocking(|h, pid1| {
            let version = portctl_engine::portable::behave_as(pid1);
            let images: Vec<_> = h
                .list_images()?
                .into_iter()
                .map(|i| h.as_version_reports(version, i))
                .collect();
            let names: Vec<&str> = images.iter().map(|i| i.name.as_str()).collect();
            let states: Vec<String> = match h.image_states(pid1, &names) {
                Ok(states) => states
                    .into_iter()
                    .zip(&names)
                    .map(|(s, name)| match s {
                        Ok(s) => s.as_str().to_string(),
                        Err(e) => {
                            tracing::error!(image = %name, "cannot work out the state: {e}");
                            String::new()
                        }
                    })
                    .collect(),
                Err(e) => {
                    tracing::error!("cannot work out the states of the images: {e}");
                    vec![String::new(); images.len()]
                }
            };
            Ok(images.into_iter().zip(states).collect::<Vec<_>>())
        })
        .await?;
    let all: Vec<String> = rows.iter().map(|(i, _)| i.name.clone()).collect();
    sync_image_objects(state, server, &all, true).await;
    Ok(rows
        .into_iter()
        .map(|(i, state)| {
            let path =
                OwnedObjectPath::try_from(image_object_path(&i.name)).expect("escaped object path");
            (
                i.name,
                i.kind.as_str().to_string(),
                i.read_only,
                i.crtime_usec,
                i.mtime_usec,
                i.usage,
                state,
                path,
            )
        })
        .collect())
}

#[interface(name = "org.freedesktop.portable1.Manager")]
impl Manager {
    #[zbus(out_args("object"))]
    async fn get_image(
        &self,
        image: String,
        #[zbus(object_server)] server: &ObjectServer,
    ) -> Result<OwnedObjectPath, PortableError> {
        get_image(&self.state, server, image).await
    }

    #[zbus(out_args("images"))]
    async fn list_images(
        &self,
        #[zbus(object_server)] server: &ObjectServer,
    ) -> Result<Vec<ImageRow>, PortableError> {
        list_images(&self.state, server).await
    }

    #[zbus(name = "GetImageOSRelease", out_args("os_release"))]
    async fn get_image_os_release(
        &self,
        image: String,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<HashMap<String, String>, PortableError> {
        Call::new(&self.state, conn, &hdr)
            .os_release(Target::Given(image))
            .await
    }

    #[zbus(out_args("image", "os_release", "units"))]
    async fn get_image_metadata(
        &self,
        image: String,
        matches: Vec<String>,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(String, Vec<u8>, BTreeMap<String, Vec<u8>>), PortableError> {
        Call::new(&self.state, conn, &hdr)
            .metadata_v252(Target::Given(image), matches)
            .await
    }

    #[zbus(out_args("image", "os_release", "extensions", "units"))]
    async fn get_image_metadata_with_extensions(
        &self,
        image: String,
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
            .metadata(Target::Given(image), extensions, matches, flags)
            .await
    }

    #[zbus(out_args("state"))]
    async fn get_image_state(
        &self,
        image: String,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<String, PortableError> {
        Call::new(&self.state, conn, &hdr)
            .state(Target::Given(image), Vec::new(), 0)
            .await
    }

    #[zbus(out_args("state"))]
    async fn get_image_state_with_extensions(
        &self,
        image: String,
        extensions: Vec<String>,
        flags: u64,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<String, PortableError> {
        Call::new(&self.state, conn, &hdr)
            .state(Target::Given(image), extensions, flags)
            .await
    }

    #[zbus(out_args("changes"))]
    #[allow(clippy::too_many_arguments)]
    async fn attach_image(
        &self,
        image: String,
        matches: Vec<String>,
        profile: String,
        runtime: bool,
        copy_mode: String,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<Changes, PortableError> {
        Call::new(&self.state, conn, &hdr)
            .attach(
                Target::Given(image),
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
    async fn attach_image_with_extensions(
        &self,
        image: String,
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
                Target::Given(image),
                extensions,
                matches,
                profile,
                copy_mode,
                flags,
            )
            .await
    }

    #[zbus(out_args("changes"))]
    async fn detach_image(
        &self,
        image: String,
        runtime: bool,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<Changes, PortableError> {
        Call::new(&self.state, conn, &hdr)
            .detach(Target::Given(image), Vec::new(), runtime_flags(runtime))
            .await
    }

    #[zbus(out_args("changes"))]
    async fn detach_image_with_extensions(
        &self,
        image: String,
        extensions: Vec<String>,
        flags: u64,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<Changes, PortableError> {
        Call::new(&self.state, conn, &hdr)
            .detach(Target::Given(image), extensions, flags)
            .await
    }

    #[zbus(out_args("changes_removed", "changes_updated"))]
    #[allow(clippy::too_many_arguments)]
    async fn reattach_image(
        &self,
        image: String,
        matches: Vec<String>,
        profile: String,
        runtime: bool,
        copy_mode: String,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(Changes, Changes), PortableError> {
        Call::new(&self.state, conn, &hdr)
            .reattach(
                Target::Given(image),
                Vec::new(),
                matches,
                profile,
                copy_mode,
                runtime_flags(runtime),
            )
            .await
    }

    #[zbus(out_args("changes_removed", "changes_updated"))]
    #[allow(clippy::too_many_arguments)]
    async fn reattach_image_with_extensions(
        &self,
        image: String,
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
                Target::Given(image),
                extensions,
                matches,
                profile,
                copy_mode,
                flags,
            )
            .await
    }

    async fn remove_image(
        &self,
        image: String,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(), PortableError> {
        Call::new(&self.state, conn, &hdr)
            .remove(Target::Given(image))
            .await
    }

    async fn mark_image_read_only(
        &self,
        image: String,
        read_only: bool,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(), PortableError> {
        Call::new(&self.state, conn, &hdr)
            .mark_read_only(Target::Given(image), read_only)
            .await
    }

    async fn set_image_limit(
        &self,
        image: String,
        limit: u64,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(), PortableError> {
        Call::new(&self.state, conn, &hdr)
            .set_limit(Target::Given(image), limit)
            .await
    }

    async fn set_pool_limit(
        &self,
        limit: u64,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(), PortableError> {
        Call::new(&self.state, conn, &hdr)
            .set_pool_limit(limit)
            .await
    }

    #[zbus(property(emits_changed_signal = "false"), name = "PoolPath")]
    fn pool_path(&self) -> String {
        POOL_PATH.to_string()
    }

    /// The pool's btrfs qgroup figures; UINT64_MAX when it is not on btrfs or quotas are off.
    #[zbus(property(emits_changed_signal = "false"), name = "PoolUsage")]
    async fn pool_usage(&self) -> Result<u64, PortableError> {
        self.state.blocking(|h, _| Ok(h.pool_usage().0)).await
    }

    #[zbus(property(emits_changed_signal = "false"), name = "PoolLimit")]
    async fn pool_limit(&self) -> Result<u64, PortableError> {
        self.state.blocking(|h, _| Ok(h.pool_usage().1)).await
    }

    #[zbus(property(emits_changed_signal = "false"), name = "Profiles")]
    async fn profiles(&self) -> Result<Vec<String>, PortableError> {
        self.state.blocking(|h, _| Ok(h.list_profiles())).await
    }
}
