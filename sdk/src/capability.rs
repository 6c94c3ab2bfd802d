//! Capabilities: what a system, pool or port offers, described by the driver.
//!
//! A driver declares [`CapabilityDefinition`]s (a uid and the property names
//! it uses) and attaches [`CapabilityInstance`]s (values for those properties)
//! to systems, pools and ports, as CoprHD's `storagecapabilities` package does.

use abi_stable::std_types::{RString, RVec};
use abi_stable::StableAbi;
use serde::{Deserialize, Serialize};

crate::open_enum! {
    /// The area a capability belongs to (CoprHD's capability categories).
    CapabilityCategory default DATA_STORAGE {
        /// How data is stored (provisioning, media, layout, compression).
        DATA_STORAGE = 1 => "dataStorage",
        /// How data is protected (replication, snapshots).
        STORAGE_PROTECTION = 2 => "storageProtection",
        /// Performance (tiering, I/O limits).
        STORAGE_PERFORMANCE = 3 => "storagePerformance",
        /// Connectivity (protocols, paths).
        STORAGE_CONNECTIVITY = 4 => "storageConnectivity",
    }
}

/// Declares a kind of capability and the property names its instances use.
#[repr(C)]
#[derive(Debug, Clone, PartialEq, Eq, Default, StableAbi, Serialize, Deserialize)]
#[serde(default)]
pub struct CapabilityDefinition {
    /// Unique id of the definition, e.g. `autoTieringPolicy`.
    pub uid: RString,
    /// The area it belongs to.
    pub category: CapabilityCategory,
    /// Property names instances may carry.
    pub property_names: RVec<RString>,
    /// What the capability means, for operators.
    pub description: RString,
}

impl CapabilityDefinition {
    /// A definition with `uid`, `category` and the given property names.
    pub fn new(uid: &str, category: CapabilityCategory, property_names: &[&str]) -> Self {
        Self {
            uid: uid.into(),
            category,
            property_names: property_names.iter().map(|&n| RString::from(n)).collect(),
            description: RString::new(),
        }
    }

    /// Sets the description.
    pub fn with_description(mut self, description: &str) -> Self {
        self.description = description.into();
        self
    }
}

/// One property of a capability instance: a name and its values.
#[repr(C)]
#[derive(Debug, Clone, PartialEq, Eq, Default, StableAbi)]
pub struct CapabilityProperty {
    /// Property name, one of the definition's `property_names`.
    pub name: RString,
    /// Values, in the driver's order.
    pub values: RVec<RString>,
}

/// Values of one capability for one object: property name -> list of values.
#[repr(C)]
#[derive(Debug, Clone, PartialEq, Eq, Default, StableAbi, Serialize, Deserialize)]
#[serde(default)]
pub struct CapabilityInstance {
    /// uid of the [`CapabilityDefinition`] this instance fills in.
    pub definition_uid: RString,
    /// Name of the instance (a policy name, or the uid again).
    pub name: RString,
    /// Property name -> values; serialized as a JSON object in property order.
    #[serde(with = "properties_as_map")]
    pub properties: RVec<CapabilityProperty>,
}

impl CapabilityInstance {
    /// An instance of `definition_uid` named `name`, without properties.
    pub fn new(definition_uid: &str, name: &str) -> Self {
        Self {
            definition_uid: definition_uid.into(),
            name: name.into(),
            properties: RVec::new(),
        }
    }

    /// Sets `property` to `values`, replacing earlier values.
    pub fn with_property<I, S>(mut self, property: &str, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<RString>,
    {
        let values: RVec<RString> = values.into_iter().map(Into::into).collect();
        match self.properties.iter_mut().find(|p| p.name == property) {
            Some(existing) => existing.values = values,
            None => self.properties.push(CapabilityProperty {
                name: property.into(),
                values,
            }),
        }
        self
    }

    /// Values of `property`, if it is set.
    pub fn values(&self, property: &str) -> Option<&[RString]> {
        self.properties
            .iter()
            .find(|p| p.name == property)
            .map(|p| p.values.as_slice())
    }

    /// First value of `property`, if any.
    pub fn value(&self, property: &str) -> Option<&str> {
        self.values(property)
            .and_then(|v| v.first())
            .map(RString::as_str)
    }
}

mod properties_as_map {
    use super::CapabilityProperty;
    use abi_stable::std_types::{RString, RVec};
    use serde::de::{MapAccess, Visitor};
    use serde::ser::SerializeMap;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        props: &RVec<CapabilityProperty>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(props.len()))?;
        for p in props {
            map.serialize_entry(&p.name, &p.values)?;
        }
        map.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<RVec<CapabilityProperty>, D::Error> {
        struct MapVisitor;
        impl<'de> Visitor<'de> for MapVisitor {
            type Value = RVec<CapabilityProperty>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of property name to list of values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                let mut props = RVec::new();
                while let Some((name, values)) = access.next_entry::<RString, RVec<RString>>()? {
                    props.push(CapabilityProperty { name, values });
                }
                Ok(props)
            }
        }
        d.deserialize_map(MapVisitor)
    }
}
