//! The operations both interfaces serve (the Manager with an image argument, an Image object
//! with its own path): argument checks, authorization, then one call into the engine.

use std::collections::{BTreeMap, HashMap};

use portctl_dbus::error::{self as names, PortableError};
use portctl_dbus::flags::Flags;
use portctl_engine::parse::names::{parse_image_ref, ImageRef};
use portctl_engine::portable::{AttachOptions, Change, CopyMode, DetachOptions};
use portctl_engine::Host;
use zbus::message::Header;
use zbus::Connection;

use crate::auth::{authorize, Action};
use crate::pid1::SystemdManager;
use crate::state::{Op, State};

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

/// The image a call is about.
pub enum Target {
    /// The `image` argument of a Manager method: a name or a path, as the caller gave it.
    Given(String),
    /// The image of an image object, by name; each call finds it again and works on its
    /// path, as v252 does.
    Object(String),
}

impl Target {
    /// The image argument the engine works on.
    fn resolve(&self, h: &Host, pid1: &SystemdManager) -> portctl_engine::Result<String> {
        match self {
            Self::Given(image) => Ok(image.clone()),
            Self::Object(name) => {
                let image = h.find_image_by_name(name)?;
                let version = portctl_engine::portable::behave_as(pid1);
                Ok(h.as_version_reports(version, image)
                    .path
                    .display()
                    .to_string())
            }
        }
    }

    /// Whether reading the image needs `inspect-images` authorization: an image named by
    /// path (v252's AUTHENTICATE_BY_PATH). Images named by name, and the image of an image
    /// object, every caller may read.
    fn read_needs_auth(&self) -> bool {
        matches!(self, Self::Given(image) if is_path(image))
    }
}

/// One call in flight: the shared state, who called, and the count of operations in flight
/// (held until the reply is built).
pub struct Call<'a> {
    state: &'a State,
    conn: &'a Connection,
    hdr: &'a Header<'a>,
    _op: Op<'a>,
}

impl<'a> Call<'a> {
    pub fn new(state: &'a State, conn: &'a Connection, hdr: &'a Header<'a>) -> Self {
        Self {
            state,
            conn,
            hdr,
            _op: state.begin(),
        }
    }

    async fn auth(&self, action: Action) -> Result<(), PortableError> {
        authorize(self.conn, self.hdr, action).await
    }

    /// Authorizes reading `target` and the extension images, which are arguments of the
    /// call and checked wherever they arrive.
    async fn auth_read(&self, target: &Target, extensions: &[String]) -> Result<(), PortableError> {
        if target.read_needs_auth() || extensions.iter().any(|e| is_path(e)) {
            self.auth(Action::Inspect).await?;
        }
        Ok(())
    }

    pub async fn os_release(
        self,
        target: Target,
    ) -> Result<HashMap<String, String>, PortableError> {
        self.auth_read(&target, &[]).await?;
        let pairs = self
            .state
            .blocking(move |h, pid1| h.image_os_release(&target.resolve(h, pid1)?))
            .await?;
        Ok(pairs.into_iter().collect())
    }

    pub async fn metadata(
        self,
        target: Target,
        extensions: Vec<String>,
        matches: Vec<String>,
        flags: u64,
    ) -> Result<Metadata, PortableError> {
        let flags = Flags::from_bits(flags)?;
        self.auth_read(&target, &extensions).await?;
        let (m, releases) = self
            .state
            .blocking(move |h, pid1| {
                h.image_metadata(
                    pid1,
                    &target.resolve(h, pid1)?,
                    &extensions,
                    &matches,
                    flags.force_extension,
                )
            })
            .await?;
        Ok((
            m.path,
            m.os_release,
            releases.into_iter().collect(),
            m.units.into_iter().collect(),
        ))
    }

    /// The v252 reply of the methods without extensions: the extensions' releases left out.
    pub async fn metadata_v252(
        self,
        target: Target,
        matches: Vec<String>,
    ) -> Result<(String, Vec<u8>, BTreeMap<String, Vec<u8>>), PortableError> {
        let (path, os_release, _, units) = self.metadata(target, Vec::new(), matches, 0).await?;
        Ok((path, os_release, units))
    }

    pub async fn state(
        self,
        target: Target,
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
            .blocking(move |h, pid1| h.image_state(pid1, &target.resolve(h, pid1)?, &extensions))
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
            copy: CopyMode::parse(copy_mode)
                .map_err(|e| crate::errors::to_wire(e, portctl_engine::version::Version::OLDEST))?,
            force: flags.force_attach,
            extensions,
            relax_extension_check: flags.force_extension,
        })
    }

    pub async fn attach(
        self,
        target: Target,
        extensions: Vec<String>,
        matches: Vec<String>,
        profile: String,
        copy_mode: String,
        flags: u64,
    ) -> Result<Changes, PortableError> {
        let o = Self::options(
            matches,
            extensions,
            profile,
            &copy_mode,
            Flags::from_bits(flags)?,
        )?;
        self.auth(Action::Attach).await?;
        let changes = self
            .state
            .blocking(move |h, pid1| {
                let image = target.resolve(h, pid1)?;
                tracing::info!(image = %image, extensions = ?o.extensions, profile = %o.profile, runtime = o.runtime, "attach");
                h.attach(pid1, &image, &o)
            })
            .await?;
        Ok(wire(changes))
    }

    pub async fn detach(
        self,
        target: Target,
        extensions: Vec<String>,
        flags: u64,
    ) -> Result<Changes, PortableError> {
        let flags = Flags::from_bits(flags)?;
        self.auth(Action::Attach).await?;
        let o = DetachOptions {
            extensions,
            runtime: flags.runtime,
            force: flags.force_attach,
        };
        let changes = self
            .state
            .blocking(move |h, pid1| {
                let image = target.resolve(h, pid1)?;
                tracing::info!(image = %image, extensions = ?o.extensions, runtime = o.runtime, "detach");
                h.detach(pid1, &image, &o)
            })
            .await?;
        Ok(wire(changes))
    }

    pub async fn reattach(
        self,
        target: Target,
        extensions: Vec<String>,
        matches: Vec<String>,
        profile: String,
        copy_mode: String,
        flags: u64,
    ) -> Result<(Changes, Changes), PortableError> {
        let o = Self::options(
            matches,
            extensions,
            profile,
            &copy_mode,
            Flags::from_bits(flags)?,
        )?;
        self.auth(Action::Attach).await?;
        let (removed, updated) = self
            .state
            .blocking(move |h, pid1| {
                let image = target.resolve(h, pid1)?;
                tracing::info!(image = %image, profile = %o.profile, runtime = o.runtime, "reattach");
                h.reattach(pid1, &image, &o)
            })
            .await?;
        Ok((wire(removed), wire(updated)))
    }

    pub async fn remove(self, target: Target) -> Result<(), PortableError> {
        self.auth(Action::Manage).await?;
        self.state
            .blocking(move |h, pid1| {
                let image = target.resolve(h, pid1)?;
                tracing::info!(image = %image, "remove");
                h.remove_image(pid1, &image)
            })
            .await
    }

    pub async fn mark_read_only(
        self,
        target: Target,
        read_only: bool,
    ) -> Result<(), PortableError> {
        self.auth(Action::Manage).await?;
        self.state
            .blocking(move |h, pid1| {
                let image = target.resolve(h, pid1)?;
                tracing::info!(image = %image, read_only, "read-only");
                h.mark_read_only(&image, read_only)
            })
            .await
    }

    pub async fn set_limit(self, target: Target, limit: u64) -> Result<(), PortableError> {
        self.auth(Action::Manage).await?;
        self.state
            .blocking(move |h, pid1| h.set_image_limit(&target.resolve(h, pid1)?, limit))
            .await
    }

    pub async fn set_pool_limit(self, limit: u64) -> Result<(), PortableError> {
        self.auth(Action::Manage).await?;
        self.state
            .blocking(move |h, _| h.set_pool_limit(limit))
            .await
    }
}

/// The flags of the methods without extensions: `runtime ? RUNTIME : 0`.
pub fn runtime_flags(runtime: bool) -> u64 {
    Flags {
        runtime,
        ..Flags::default()
    }
    .bits()
}
