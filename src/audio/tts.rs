//! Speech from text with a local engine, run as a child process (`tokio::process`, text passed
//! as an argument, never through a shell): `flite` (Kazoo's default engine) or `espeak-ng`. The
//! engine writes a WAV file that goes through [`super::decode`] to an 8 kHz clip.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::clip::Clip;
use super::decode::{DecodeLimits, decode_blocking};
use super::library::AudioError;
use super::sound::TtsRequest;

/// How long an engine may take before it is killed.
pub const ENGINE_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest text spoken (characters); longer text is refused, not truncated.
pub const MAX_TEXT_CHARS: usize = 4000;

/// The engines this proxy runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Engine {
    /// `flite`: English only; voices `slt` (female), `kal`, `rms`, `awb`.
    Flite,
    /// `espeak-ng`: many languages, robotic.
    EspeakNg,
}

impl Engine {
    /// The engine Kazoo's `engine` names (empty is Kazoo's default, flite).
    pub fn from_name(name: &str) -> Result<Self, AudioError> {
        match name.trim().to_ascii_lowercase().as_str() {
            "" | "flite" => Ok(Self::Flite),
            "espeak" | "espeak-ng" => Ok(Self::EspeakNg),
            other => Err(AudioError::Unsupported(format!(
                "tts engine {other:?} (this proxy speaks with flite or espeak-ng)"
            ))),
        }
    }

    /// The program run.
    pub fn program(self) -> &'static str {
        match self {
            Self::Flite => "flite",
            Self::EspeakNg => "espeak-ng",
        }
    }
}

/// At most this many engines run at once (the machine's cores are the relay's first); further
/// renderings wait their turn.
pub const MAX_ENGINES: usize = 4;

/// The turns of [`MAX_ENGINES`].
static ENGINE_TURNS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_ENGINES);

/// Voices flite ships with.
const FLITE_VOICES: &[&str] = &["slt", "kal", "kal16", "rms", "awb", "awb_time"];

/// The flite voice for Kazoo's `voice`: `female` is `slt`, `male` is `rms`, a flite voice name
/// is itself.
fn flite_voice(voice: &str) -> Result<&'static str, AudioError> {
    let voice = voice.trim().to_ascii_lowercase();
    match voice.as_str() {
        "" | "female" | "feminine" => Ok("slt"),
        "male" | "masculine" => Ok("rms"),
        name => FLITE_VOICES
            .iter()
            .find(|known| **known == name)
            .copied()
            .ok_or_else(|| {
                AudioError::Unsupported(format!(
                    "flite voice {name:?} (female, male or one of {})",
                    FLITE_VOICES.join(", ")
                ))
            }),
    }
}

/// The espeak-ng voice for Kazoo's `language` and `voice`: the language lower-cased
/// (`en-US` → `en-us`), with the `f3` variant for a female voice and `m3` for a male one.
fn espeak_voice(language: Option<&str>, voice: &str) -> Result<String, AudioError> {
    let language = language
        .map(|language| language.trim().to_ascii_lowercase())
        .filter(|language| !language.is_empty())
        .unwrap_or_else(|| "en-us".to_owned());
    if !language
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(AudioError::Unsupported(format!("language {language:?}")));
    }
    let variant = match voice.trim().to_ascii_lowercase().as_str() {
        "" | "female" | "feminine" => "+f3",
        "male" | "masculine" => "+m3",
        _ => "",
    };
    Ok(format!("{language}{variant}"))
}

/// Kazoo's voice as gender and language: `female/en-US` (its media schema's form) is `female`
/// with `en-US`; a plain `female` or voice name has no language of its own.
fn split_voice(voice: &str) -> (&str, Option<&str>) {
    match voice.split_once('/') {
        Some((gender, rest)) => (gender, rest.split('/').next().filter(|l| !l.is_empty())),
        None => (voice, None),
    }
}

/// A new, empty file no other rendering uses, created by this process (`create_new`: a file or
/// link another user placed at that name in the shared temporary directory is never written
/// through), for the engine to write into.
fn scratch_file() -> Result<PathBuf, AudioError> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    for _ in 0..8 {
        let path = std::env::temp_dir().join(format!(
            "metaflow-proxy-tts-{}-{}-{:08x}.wav",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            fastrand::u32(..)
        ));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(_) => return Ok(path),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(err) => {
                return Err(AudioError::Engine(format!(
                    "cannot create a scratch file: {err}"
                )));
            }
        }
    }
    Err(AudioError::Engine("cannot create a scratch file".into()))
}

/// Removes the scratch file however the rendering ends.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Renders `request` with its engine into a clip (uncached; [`super::SoundLibrary`] caches).
pub async fn render(request: &TtsRequest) -> Result<Clip, AudioError> {
    let engine = Engine::from_name(&request.engine)?;
    let text = request.text.trim();
    if text.is_empty() {
        return Err(AudioError::Engine("nothing to say (empty text)".into()));
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(AudioError::Engine(format!(
            "text longer than {MAX_TEXT_CHARS} characters"
        )));
    }
    // A text starting with '-' would read as an option to espeak-ng.
    let text = if text.starts_with('-') {
        format!(" {text}")
    } else {
        text.to_owned()
    };
    let (voice, voice_language) = split_voice(&request.voice);
    let language = request.language.as_deref().or(voice_language);
    let _turn = ENGINE_TURNS
        .acquire()
        .await
        .map_err(|_| AudioError::Engine("speech engines closed".into()))?;
    let scratch = Scratch(scratch_file()?);
    let mut command = tokio::process::Command::new(engine.program());
    match engine {
        Engine::Flite => {
            command
                .arg("-voice")
                .arg(flite_voice(voice)?)
                .arg("-o")
                .arg(&scratch.0)
                .arg("-t")
                .arg(&text);
        }
        Engine::EspeakNg => {
            command
                .arg("-v")
                .arg(espeak_voice(language, voice)?)
                .arg("-w")
                .arg(&scratch.0)
                .arg(&text);
        }
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let program = engine.program();
    let child = command
        .spawn()
        .map_err(|error| AudioError::Engine(format!("cannot run {program}: {error}")))?;
    let output = tokio::time::timeout(ENGINE_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| {
            AudioError::Engine(format!(
                "{program} took longer than {} s",
                ENGINE_TIMEOUT.as_secs()
            ))
        })?
        .map_err(|error| AudioError::Engine(format!("{program}: {error}")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(AudioError::Engine(format!(
            "{program} failed ({}): {}",
            output.status,
            stderr.trim().chars().take(200).collect::<String>()
        )));
    }
    let bytes = tokio::fs::read(&scratch.0)
        .await
        .map_err(|error| AudioError::Engine(format!("{program} wrote no audio: {error}")))?;
    decode_blocking(bytes, DecodeLimits::default()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(engine: &str, voice: &str, text: &str) -> TtsRequest {
        TtsRequest {
            text: text.into(),
            voice: voice.into(),
            language: Some("en-US".into()),
            engine: engine.into(),
        }
    }

    /// Fails loudly (never skips) when an engine the tests need is not installed.
    fn require(program: &str) {
        let found = std::process::Command::new(program)
            .arg("--version")
            .output()
            .is_ok();
        assert!(
            found,
            "{program} is not installed: apt-get install flite espeak-ng (the tts tests need it)"
        );
    }

    #[test]
    fn voices_and_engines_map_as_kazoo_names_them() {
        assert_eq!(flite_voice("female").unwrap(), "slt");
        assert_eq!(flite_voice("Male").unwrap(), "rms");
        assert_eq!(flite_voice("kal").unwrap(), "kal");
        assert!(flite_voice("robot").is_err());
        assert_eq!(espeak_voice(Some("en-US"), "female").unwrap(), "en-us+f3");
        assert_eq!(espeak_voice(None, "male").unwrap(), "en-us+m3");
        assert!(espeak_voice(Some("en;rm"), "male").is_err());
        assert_eq!(split_voice("female/en-US"), ("female", Some("en-US")));
        assert_eq!(split_voice("male/ru-RU/Vladimir"), ("male", Some("ru-RU")));
        assert_eq!(split_voice("slt"), ("slt", None));
        let error = Engine::from_name("polly").unwrap_err();
        assert!(matches!(&error, AudioError::Unsupported(text) if text.contains("polly")));
    }

    #[tokio::test]
    async fn flite_and_espeak_ng_speak_into_an_8khz_clip() {
        for (engine, voice) in [
            ("flite", "female"),
            ("flite", "male"),
            ("espeak-ng", "female"),
        ] {
            require(Engine::from_name(engine).unwrap().program());
            let clip = render(&request(engine, voice, "Hello, thank you for calling."))
                .await
                .unwrap();
            let seconds = clip.duration().as_secs_f32();
            assert!(
                (0.8..6.0).contains(&seconds),
                "{engine}/{voice}: {seconds} s"
            );
            let loud = clip
                .samples()
                .iter()
                .filter(|s| s.unsigned_abs() > 1000)
                .count();
            assert!(loud > 800, "{engine}/{voice}: only {loud} loud samples");
        }
    }

    #[tokio::test]
    async fn an_unknown_engine_or_empty_text_is_refused() {
        assert!(matches!(
            render(&request("polly", "female", "hi")).await,
            Err(AudioError::Unsupported(_))
        ));
        assert!(matches!(
            render(&request("flite", "female", "  ")).await,
            Err(AudioError::Engine(_))
        ));
        require("espeak-ng");
        let dashed = render(&request("espeak", "male", "-v is not an option")).await;
        assert!(dashed.is_ok(), "{dashed:?}");
    }
}
