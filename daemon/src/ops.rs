//! The operations both interfaces serve (the Manager with an image argument, an Image object
//! with its own path): argument checks, authorization, then one call into the engine.

use std::collections::{BTreeMap, HashMap};

use portctl_dbus::error::{self as names, PortableError};
use portctl_engine::names::{parse_image_ref, ImageRef};
use portctl_engine::portable::{AttachOptions, Change, CopyMode, DetachOptions, Flags};
use zbus::message::Header;
use zbus::Connection;

use crate::auth::{authorize, Action};
use crate::state::State;

pub type Changes = Vec<(String, String, String)>;
pub type Metadata = (
    String,
    Vec<u8>,
    BTreeMap<String, Vec<u8>>,
    BTreeMap<String, Vec<u8>>,
);

fn wire(changes: Vec<Change>) -> Changes {
    changes
        .into_iter()
        .map(|c| (c.kind.as_str().to_string(), c.path, c.source))
        .collect()
}

fn is_path(image: &str) -> bool {
    matches!(parse_image_ref(image), Ok(ImageRef::Path(_)))
}

/// Everything a call needs besides its arguments.
pub struct Call<'a> {
    pub state: &'a State,
    pub conn: &'a Connection,
    pub hdr: &'a Header<'a>,
}

impl Call<'_> {
    async fn auth(&self, action: Action) -> Result<(), PortableError> {
        authorize(self.conn, self.hdr, action).await
    }

    /// Reading an image named by path needs `inspect-images` authorization (v252's
    /// AUTHENTICATE_BY_PATH). `resolved_by_object` says that `image` is the root image of a
    /// call to an image object, which resolved it from the object's own name (every caller
    /// may read images by name, as v252 skips the check for an image passed in). Extension
    /// images are arguments of the call, authorized wherever they arrive.
    async fn auth_read(&self, image: &str, resolved_by_object: bool) -> Result<(), PortableError> {
        if is_path(image) && !resolved_by_object {
            self.auth(Action::Inspect).await?;
        }
        Ok(())
    }

    /// Whether the call came to an image object (not to the Manager).
    fn to_image_object(&self) -> bool {
        let prefix = format!("{}/", portctl_dbus::IMAGE_PATH_PREFIX);
        self.hdr
            .path()
            .is_some_and(|p| p.as_str().starts_with(&prefix))
    }

    pub async fn os_release(
        &self,
        image: String,
    ) -> Result<HashMap<String, String>, PortableError> {
        self.auth_read(&image, self.to_image_object()).await?;
        let pairs = self
            .state
            .blocking(move |h, _| h.image_os_release(&image))
            .await?;
        Ok(pairs.into_iter().collect())
    }

    pub async fn metadata(
        &self,
        image: String,
        extensions: Vec<String>,
        matches: Vec<String>,
        flags: u64,
    ) -> Result<Metadata, PortableError> {
        let flags = Flags::from_bits(flags).map_err(crate::errors::to_wire)?;
        self.auth_read(&image, self.to_image_object()).await?;
        for e in &extensions {
            self.auth_read(e, false).await?;
        }
        let (m, releases) = self
            .state
            .blocking(move |h, _| {
                h.image_metadata(&image, &extensions, &matches, flags.force_extension)
            })
            .await?;
        Ok((
            m.path,
            m.os_release,
            releases.into_iter().collect(),
            m.units.into_iter().collect(),
        ))
    }

    pub async fn state(
        &self,
        image: String,
        extensions: Vec<String>,
        flags: u64,
    ) -> Result<String, PortableError> {
        if flags != 0 {
            return Err(PortableError::new(
                names::INVALID_ARGS,
                format!("Invalid 'flags' parameter '{flags}'"),
            ));
        }
        let s = self
            .state
            .blocking(move |h, pid1| h.image_state(pid1, &image, &extensions))
            .await?;
        Ok(s.as_str().to_string())
    }

    fn options(
        matches: Vec<String>,
        extensions: Vec<String>,
        profile: String,
        copy_mode: &str,
        flags: Flags,
    ) -> Result<AttachOptions, PortableError> {
        Ok(AttachOptions {
            matches,
            profile,
            runtime: flags.runtime,
            copy: CopyMode::parse(copy_mode).map_err(crate::errors::to_wire)?,
            force: flags.force_attach,
            extensions,
            relax_extension_check: flags.force_extension,
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn attach(
        &self,
        image: String,
        extensions: Vec<String>,
        matches: Vec<String>,
        profile: String,
        copy_mode: String,
        flags: Flags,
    ) -> Result<Changes, PortableError> {
        let o = Self::options(matches, extensions, profile, &copy_mode, flags)?;
        self.auth(Action::Attach).await?;
        tracing::info!(image = %image, extensions = ?o.extensions, profile = %o.profile, runtime = o.runtime, "attach");
        let changes = self
            .state
            .blocking(move |h, pid1| h.attach(pid1, &image, &o))
            .await?;
        Ok(wire(changes))
    }

    pub async fn detach(
        &self,
        image: String,
        extensions: Vec<String>,
        flags: Flags,
    ) -> Result<Changes, PortableError> {
        self.auth(Action::Attach).await?;
        tracing::info!(image = %image, ?extensions, runtime = flags.runtime, "detach");
        let o = DetachOptions {
            extensions,
            runtime: flags.runtime,
            force: flags.force_attach,
        };
        let changes = self
            .state
            .blocking(move |h, pid1| h.detach(pid1, &image, &o))
            .await?;
        Ok(wire(changes))
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn reattach(
        &self,
        image: String,
        extensions: Vec<String>,
        matches: Vec<String>,
        profile: String,
        copy_mode: String,
        flags: Flags,
    ) -> Result<(Changes, Changes), PortableError> {
        let o = Self::options(matches, extensions, profile, &copy_mode, flags)?;
        self.auth(Action::Attach).await?;
        tracing::info!(image = %image, profile = %o.profile, runtime = o.runtime, "reattach");
        let (removed, updated) = self
            .state
            .blocking(move |h, pid1| h.reattach(pid1, &image, &o))
            .await?;
        Ok((wire(removed), wire(updated)))
    }

    pub async fn remove(&self, image: String) -> Result<(), PortableError> {
        self.auth(Action::Manage).await?;
        tracing::info!(image = %image, "remove");
        self.state
            .blocking(move |h, pid1| h.remove_image(pid1, &image))
            .await
    }

    pub async fn mark_read_only(
        &self,
        image: String,
        read_only: bool,
    ) -> Result<(), PortableError> {
        self.auth(Action::Manage).await?;
        tracing::info!(image = %image, read_only, "read-only");
        self.state
            .blocking(move |h, _| h.mark_read_only(&image, read_only))
            .await
    }

    pub async fn set_limit(&self, image: String, limit: u64) -> Result<(), PortableError> {
        self.auth(Action::Manage).await?;
        self.state
            .blocking(move |h, _| h.set_image_limit(&image, limit))
            .await
    }

    pub async fn set_pool_limit(&self, limit: u64) -> Result<(), PortableError> {
        self.auth(Action::Manage).await?;
        self.state
            .blocking(move |h, _| h.set_pool_limit(limit))
            .await
    }
}

/// `(runtime ? RUNTIME : 0)` of the plain methods.
pub fn runtime_flags(runtime: bool) -> Flags {
    Flags {
        runtime,
        ..Flags::default()
    }
}

/// The flags of the `*WithExtensions` methods.
pub fn parse_flags(flags: u64) -> Result<Flags, PortableError> {
    Flags::from_bits(flags).map_err(crate::errors::to_wire)
}
