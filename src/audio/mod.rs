//! Sounds the proxy speaks into a call: the G.711 codecs, and everything that produces a
//! [`Clip`] (8 kHz mono linear PCM) for the media relay to play: uploaded media files, Kazoo
//! `tone_stream://` tones, speech rendered by a local engine (`tts`, `say`) and the built-in
//! music on hold. Producing a clip may read files or run an engine, so it happens off the packet
//! path ([`SoundLibrary::resolve`] is async); the relay only reads finished clips.
//!
//! Nothing here depends on the media relay, the call core or the modules.

pub mod cache;
pub mod clip;
pub mod decode;
pub mod g711;
pub mod library;
pub mod media_files;
pub mod moh;
pub mod numbers;
pub mod resample;
pub mod say;
pub mod sound;
pub mod speech_disk;
pub mod tone;
pub mod tts;

pub use clip::{CLIP_RATE, Clip};
pub use library::{AudioError, LibraryConfig, SoundLibrary};
pub use sound::{SayRequest, SoundRef, TtsRequest};
