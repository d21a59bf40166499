//! What the configuration knows of sink types: each is a [`SinkKind`] (its `type` name,
//! the outputs it takes, its keys and how they are read into [`SinkSettings`]), and a
//! configuration is loaded with the set of them ([`SinkTypes`]). The connectors
//! (`weir-connectors`) implement the kinds and build the sinks; this crate never names
//! one, so a new sink type needs no change here.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt::{self, Debug};
use std::path::Path;
use std::sync::Arc;

use crate::{OutputKind, SinkTable};

/// The sink types a configuration may use, and the sinks it gets when it defines none.
#[derive(Clone, Copy)]
pub struct SinkTypes {
    kinds: &'static [&'static dyn SinkKind],
    defaults: fn(&Path) -> BTreeMap<String, SinkConfig>,
}

impl SinkTypes {
    /// The types of `kinds`, in the order messages list them; `defaults` gives the sinks
    /// of a configuration without `[sinks]` from its `server.data_dir`.
    pub const fn new(
        kinds: &'static [&'static dyn SinkKind],
        defaults: fn(&Path) -> BTreeMap<String, SinkConfig>,
    ) -> Self {
        Self { kinds, defaults }
    }

    /// Every sink type, in the order messages list them.
    pub fn all(&self) -> impl Iterator<Item = SinkType> + '_ {
        self.kinds.iter().map(|&kind| SinkType::of(kind))
    }

    /// The sink type written `name` in the configuration, if there is one.
    pub fn named(&self, name: &str) -> Option<SinkType> {
        self.all().find(|t| t.as_str() == name)
    }

    /// The sinks of a configuration without `[sinks]`, with `data_dir` its
    /// `server.data_dir`.
    pub fn defaults(&self, data_dir: &Path) -> BTreeMap<String, SinkConfig> {
        (self.defaults)(data_dir)
    }
}

impl Debug for SinkTypes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.all().map(SinkType::as_str)).finish()
    }
}

/// A sink type: its name, what it takes, and how its `[sinks.NAME]` table is read.
pub trait SinkKind: Send + Sync + 'static {
    /// The name in `type = "…"`.
    fn name(&self) -> &'static str;

    /// Whether a sink of this type takes `output` (routes to it are checked against this,
    /// and the default routes use every sink that takes an output).
    fn accepts(&self, output: OutputKind) -> bool;

    /// The keys `[sinks.NAME]` may hold besides `type`; any other is reported.
    fn keys(&self) -> &'static [&'static str];

    /// Reads the settings from the sink's table. Every problem is reported through
    /// `table` at its line; what is wrong is left at its default, since the loader
    /// refuses the whole file when anything was reported.
    fn read(&self, table: &mut SinkTable<'_, '_, '_, '_>) -> SinkConfig;
}

/// A sink's settings, as its connector read them. How a sink is built from them is the
/// connector's business (`weir-connectors`), not the configuration's.
pub trait SinkSettings: Any + DynEq + Debug + Send + Sync {
    /// The sink's type.
    fn sink_type(&self) -> SinkType;
}

/// Equality between settings behind `dyn` (settings of different types are unequal).
pub trait DynEq {
    /// Whether `other` is settings of the same type and equal.
    fn same_as(&self, other: &dyn SinkSettings) -> bool;
}

impl<T: SinkSettings + PartialEq> DynEq for T {
    fn same_as(&self, other: &dyn SinkSettings) -> bool {
        let other: &dyn Any = other;
        other.downcast_ref::<T>() == Some(self)
    }
}

/// The kind of a sink (`type` in `[sinks.NAME]`): one of the [`SinkTypes`] the
/// configuration was loaded with. Compared, ordered and shown by its name.
#[derive(Clone, Copy)]
pub struct SinkType(&'static dyn SinkKind);

impl SinkType {
    /// The type of a connector's sinks.
    pub fn of(kind: &'static dyn SinkKind) -> SinkType {
        SinkType(kind)
    }

    /// The type as written in the configuration: `lake`, `dead-letters`, `serving`…
    pub fn as_str(self) -> &'static str {
        self.0.name()
    }

    /// Whether a sink of this type takes `output`.
    pub fn accepts(self, output: OutputKind) -> bool {
        self.0.accepts(output)
    }

    /// The connector behind the type.
    pub fn kind(self) -> &'static dyn SinkKind {
        self.0
    }
}

impl PartialEq for SinkType {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for SinkType {}

impl PartialOrd for SinkType {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SinkType {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl std::hash::Hash for SinkType {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for SinkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SinkType({})", self.as_str())
    }
}

impl fmt::Display for SinkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[sinks.NAME]`: one destination — its type's settings, as that type's connector read
/// them. Cheap to clone.
#[derive(Clone)]
pub struct SinkConfig(Arc<dyn SinkSettings>);

impl SinkConfig {
    /// A sink with these settings.
    pub fn new(settings: impl SinkSettings) -> Self {
        Self(Arc::new(settings))
    }

    /// The sink's type.
    pub fn sink_type(&self) -> SinkType {
        self.0.sink_type()
    }

    /// Whether this sink takes `output` (see [`SinkType::accepts`]).
    pub fn accepts(&self, output: OutputKind) -> bool {
        self.sink_type().accepts(output)
    }

    /// The settings, when they are of type `T` (a connector's settings type, e.g.
    /// `weir_connectors::LakeSettings`).
    pub fn settings<T: SinkSettings>(&self) -> Option<&T> {
        let settings: &dyn std::any::Any = self.0.as_ref();
        settings.downcast_ref::<T>()
    }
}

impl PartialEq for SinkConfig {
    fn eq(&self, other: &Self) -> bool {
        self.0.same_as(other.0.as_ref())
    }
}

impl fmt::Debug for SinkConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}
