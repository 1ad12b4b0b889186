//! The modules the proxy knows, in one list. A metaflow node names its module and carries its
//! `data`; at validation the pair is parsed once into a typed [`ModuleSpec`], which the call core
//! later turns into a running [`Module`]. Adding a module is one folder implementing
//! [`ModuleKind`] plus one line in the `catalog!` list below.

use serde_json::{Map, Value};

use crate::base::Problem;

use super::context::Module;

/// What a module folder offers the catalog: its name, how its `data` is checked and stored, and
/// how it starts on a call.
pub trait ModuleKind {
    /// The name in metaflow nodes (`"module": NAME`).
    const NAME: &'static str;
    /// The checked form of the node's `data`.
    type Params: Clone + std::fmt::Debug + PartialEq + Send + Sync;
    /// Checks `data`, reporting every problem with its path below the node (`data.FIELD`).
    fn parse(data: &Map<String, Value>) -> Result<Self::Params, Vec<Problem>>;
    /// Fills in the defaults Kazoo stores for the module (nothing by default).
    fn normalise(data: &mut Map<String, Value>) {
        let _ = data;
    }
    /// A fresh instance to run on one call.
    fn start(params: &Self::Params) -> Box<dyn Module>;
}

/// Declares the catalog entry `Kind` of a module that takes no data (`Params = ()`), starting
/// `$module` on each call: `hangup`, `resume` and `break` need nothing else.
macro_rules! parameterless_kind {
    ($name:expr, $module:expr) => {
        /// The catalog entry of the module (it takes no data).
        #[derive(Debug)]
        pub struct Kind;

        impl $crate::modules::catalog::ModuleKind for Kind {
            const NAME: &'static str = $name;
            type Params = ();

            fn parse(
                _data: &serde_json::Map<String, serde_json::Value>,
            ) -> Result<(), Vec<$crate::base::Problem>> {
                Ok(())
            }

            fn start(_params: &()) -> Box<dyn $crate::modules::context::Module> {
                Box::new($module)
            }
        }
    };
}
pub(crate) use parameterless_kind;

/// Declares [`ModuleSpec`] and its dispatch from one list of `Variant => folder` lines.
macro_rules! catalog {
    ($($variant:ident => $folder:ident),* $(,)?) => {
        /// A metaflow node's module with its checked parameters.
        #[derive(Debug, Clone, PartialEq)]
        pub enum ModuleSpec {
            $(
                #[doc = concat!("The `", stringify!($folder), "` module.")]
                $variant(<super::$folder::Kind as ModuleKind>::Params),
            )*
        }

        impl ModuleSpec {
            /// Names of every module a node may use.
            pub const NAMES: &'static [&'static str] =
                &[$(<super::$folder::Kind as ModuleKind>::NAME),*];

            /// Parses `data` for the module named `module`; `None` when no module has that name.
            pub fn parse(
                module: &str,
                data: &Map<String, Value>,
            ) -> Option<Result<Self, Vec<Problem>>> {
                $(
                    if module == <super::$folder::Kind as ModuleKind>::NAME {
                        return Some(
                            <super::$folder::Kind as ModuleKind>::parse(data).map(Self::$variant),
                        );
                    }
                )*
                None
            }

            /// Fills in the stored defaults of the module named `module`.
            pub fn normalise(module: &str, data: &mut Map<String, Value>) {
                $(
                    if module == <super::$folder::Kind as ModuleKind>::NAME {
                        <super::$folder::Kind as ModuleKind>::normalise(data);
                    }
                )*
            }

            /// The module's name.
            pub fn name(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => <super::$folder::Kind as ModuleKind>::NAME,)*
                }
            }

            /// A fresh instance to run on a call.
            pub fn start(&self) -> Box<dyn Module> {
                match self {
                    $(Self::$variant(params) => <super::$folder::Kind as ModuleKind>::start(params),)*
                }
            }
        }
    };
}

catalog! {
    Hangup => hangup,
    Transfer => transfer,
    RecordCall => record,
    Hold => hold,
    Resume => resume,
    Play => play,
    Tts => tts,
    Say => say,
    Break => interrupt,
    AudioLevel => audio_level,
    Callflow => callflow,
    Intercept => intercept,
    Move => move_to,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_listed_module_parses_by_its_name() {
        // The least data each module takes (the speaking ones need something to say).
        let data = json!({"id": "greeting", "text": "hello", "target_type": "number", "target_id": "2000"});
        for name in ModuleSpec::NAMES {
            let spec = ModuleSpec::parse(name, data.as_object().unwrap());
            let spec = spec.unwrap_or_else(|| panic!("{name} not found"));
            assert_eq!(spec.map(|s| s.name()), Ok(*name));
        }
        assert!(ModuleSpec::parse("fax", &Map::new()).is_none());
        let Some(Err(problems)) = ModuleSpec::parse("play", &Map::new()) else {
            panic!("play without a media id accepted");
        };
        assert_eq!(problems[0].path, "data.id");
    }

    #[test]
    fn problems_name_the_field_below_the_node() {
        let data = json!({"transfer_type": "sideways"});
        let Some(Err(problems)) = ModuleSpec::parse("transfer", data.as_object().unwrap()) else {
            panic!("an unknown transfer type accepted");
        };
        assert_eq!(problems[0].path, "data.transfer_type");
    }
}
