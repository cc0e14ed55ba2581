//! An interface that serves a method its introspection does not name: the image object's two
//! spellings of `ReattachWithExtensions`, of which each systemd introspects one (252
//! `ReattacheWithExtensions`, from 254 on `ReattachWithExtensions`; docs/compatibility.md),
//! while clients of either version call theirs. Everything but the introspection data goes
//! to the interface as it is.

use std::collections::HashMap;
use std::fmt::Write;

use zbus::message::{Header, Message};
use zbus::names::{InterfaceName, MemberName};
use zbus::object_server::{DispatchResult, Interface, SignalEmitter};
use zbus::zvariant::{OwnedVariant, Variant};
use zbus::{fdo, BoxDBusError, Connection, ObjectServer};

pub struct Unlisted<I> {
    pub inner: I,
    /// The method left out of the introspection data.
    pub method: &'static str,
}

/// `xml` without the `<method name="…">…</method>` element of `method`.
pub fn without_method(xml: &str, method: &str) -> String {
    let open = format!("<method name=\"{method}\">");
    let Some(start) = xml.find(&open) else {
        return xml.to_string();
    };
    let Some(len) = xml[start..].find("</method>") else {
        return xml.to_string();
    };
    let line_start = xml[..start].rfind('\n').map_or(0, |i| i + 1);
    let mut end = start + len + "</method>".len();
    if xml[end..].starts_with('\n') {
        end += 1;
    }
    format!("{}{}", &xml[..line_start], &xml[end..])
}

#[zbus::export::async_trait::async_trait]
impl<I: Interface> Interface for Unlisted<I> {
    fn name() -> InterfaceName<'static> {
        I::name()
    }

    fn spawn_tasks_for_methods(&self) -> bool {
        self.inner.spawn_tasks_for_methods()
    }

    async fn get(
        &self,
        property_name: &str,
        server: &ObjectServer,
        connection: &Connection,
        header: Option<&Header<'_>>,
        emitter: &SignalEmitter<'_>,
    ) -> Option<Result<OwnedVariant, BoxDBusError>> {
        self.inner
            .get(property_name, server, connection, header, emitter)
            .await
    }

    async fn get_all(
        &self,
        server: &ObjectServer,
        connection: &Connection,
        header: Option<&Header<'_>>,
        emitter: &SignalEmitter<'_>,
    ) -> fdo::Result<HashMap<String, OwnedVariant>> {
        self.inner
            .get_all(server, connection, header, emitter)
            .await
    }

    fn set<'call>(
        &'call self,
        property_name: &'call str,
        value: &'call Variant<'_>,
        server: &'call ObjectServer,
        connection: &'call Connection,
        header: Option<&'call Header<'_>>,
        emitter: &'call SignalEmitter<'_>,
    ) -> DispatchResult<'call> {
        self.inner
            .set(property_name, value, server, connection, header, emitter)
    }

    async fn set_mut(
        &mut self,
        property_name: &str,
        value: &Variant<'_>,
        server: &ObjectServer,
        connection: &Connection,
        header: Option<&Header<'_>>,
        emitter: &SignalEmitter<'_>,
    ) -> Option<Result<(), BoxDBusError>> {
        self.inner
            .set_mut(property_name, value, server, connection, header, emitter)
            .await
    }

    fn call<'call>(
        &'call self,
        server: &'call ObjectServer,
        connection: &'call Connection,
        msg: &'call Message,
        name: MemberName<'call>,
    ) -> DispatchResult<'call> {
        self.inner.call(server, connection, msg, name)
    }

    fn call_mut<'call>(
        &'call mut self,
        server: &'call ObjectServer,
        connection: &'call Connection,
        msg: &'call Message,
        name: MemberName<'call>,
    ) -> DispatchResult<'call> {
        self.inner.call_mut(server, connection, msg, name)
    }

    fn introspect_to_writer(&self, writer: &mut dyn Write, level: usize) {
        let mut xml = String::new();
        self.inner.introspect_to_writer(&mut xml, level);
        let _ = writer.write_str(&without_method(&xml, self.method));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_that_method_goes() {
        let xml = "  <interface name=\"x\">\n    <method name=\"Reattach\">\n      <arg type=\"s\"/>\n    </method>\n    <method name=\"ReattacheWithExtensions\">\n      <arg type=\"as\"/>\n    </method>\n    <method name=\"ReattachWithExtensions\">\n    </method>\n  </interface>\n";
        assert_eq!(
            without_method(xml, "ReattacheWithExtensions"),
            "  <interface name=\"x\">\n    <method name=\"Reattach\">\n      <arg type=\"s\"/>\n    </method>\n    <method name=\"ReattachWithExtensions\">\n    </method>\n  </interface>\n"
        );
        assert_eq!(without_method(xml, "Missing"), xml);
    }
}
