//! `open_enum!`: enums that can gain variants in a minor SDK release.
//!
//! A Rust `enum` that crosses the plugin boundary has its variant list baked
//! into its abi_stable layout, so adding a variant would make every driver
//! built against the previous SDK fail the load-time layout check. An open
//! enum is instead a `#[repr(transparent)]` `u32` code with named constants:
//! its layout never changes, a newer driver's unknown code survives the trip
//! through an older host (it prints as `unknown(<code>)`), and serde uses the
//! names, so JSON stays readable (binary formats, such as the worker
//! channel, carry the code).

/// Declares an open enum. See the module documentation.
#[macro_export]
#[doc(hidden)]
macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        $name:ident default $default:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $code:literal => $text:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[repr(transparent)]
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, $crate::__private::StableAbi)]
        pub struct $name(u32);

        #[allow(non_upper_case_globals)]
        impl $name {
            $( $(#[$vmeta])* pub const $variant: Self = Self($code); )*

            /// Every value this SDK version knows, in declaration order.
            pub const KNOWN: &'static [Self] = &[$(Self::$variant),*];

            /// The stable numeric code that crosses the boundary.
            pub const fn code(self) -> u32 {
                self.0
            }

            /// Wraps a code, known or not (a newer driver may send codes this SDK lacks).
            pub const fn from_code(code: u32) -> Self {
                Self(code)
            }

            /// The canonical name, or `None` for a code this SDK version does not know.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $code => Some($text), )*
                    _ => None,
                }
            }

            /// Whether this SDK version knows the value.
            pub const fn is_known(self) -> bool {
                self.name().is_some()
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::$default
            }
        }

        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                match self.name() {
                    Some(name) => f.write_str(name),
                    None => write!(f, "unknown({})", self.0),
                }
            }
        }

        impl ::core::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                write!(f, "{}::{}", stringify!($name), self)
            }
        }

        impl ::core::str::FromStr for $name {
            type Err = $crate::UnknownVariant;

            /// Parses a canonical name, ignoring ASCII case.
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::KNOWN
                    .iter()
                    .copied()
                    .find(|v| v.name().is_some_and(|n| n.eq_ignore_ascii_case(s)))
                    .ok_or_else(|| $crate::UnknownVariant {
                        enum_name: stringify!($name),
                        value: s.to_owned(),
                    })
            }
        }

        impl $crate::__private::serde::Serialize for $name {
            fn serialize<S: $crate::__private::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                // Binary formats (the worker channel) carry the code alone.
                match self.name() {
                    Some(name) if s.is_human_readable() => s.serialize_str(name),
                    _ => s.serialize_u32(self.0),
                }
            }
        }

        impl<'de> $crate::__private::serde::Deserialize<'de> for $name {
            fn deserialize<D: $crate::__private::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct Visitor;
                impl<'de> $crate::__private::serde::de::Visitor<'de> for Visitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                        write!(f, "a {} name or numeric code", stringify!($name))
                    }
                    fn visit_str<E: $crate::__private::serde::de::Error>(self, v: &str) -> Result<$name, E> {
                        v.parse().map_err(E::custom)
                    }
                    fn visit_u64<E: $crate::__private::serde::de::Error>(self, v: u64) -> Result<$name, E> {
                        u32::try_from(v).map($name::from_code).map_err(E::custom)
                    }
                }
                if d.is_human_readable() {
                    d.deserialize_any(Visitor)
                } else {
                    d.deserialize_u32(Visitor)
                }
            }
        }
    };
}
