use super::*;
use crate::audio::SayRequest;

fn wav_bytes(rate: u32, seconds: f32) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = std::io::Cursor::new(Vec::new());
    let mut writer = hound::WavWriter::new(&mut out, spec).unwrap();
    for n in 0..(rate as f32 * seconds) as usize {
        let t = n as f32 / rate as f32;
        writer
            .write_sample((8000.0 * (std::f32::consts::TAU * 440.0 * t).sin()) as i16)
            .unwrap();
    }
    writer.finalize().unwrap();
    out.into_inner()
}

#[tokio::test]
async fn media_is_read_from_the_shared_layout_and_a_reupload_is_seen() {
    let dir = tempfile::tempdir().unwrap();
    let library = SoundLibrary::with_data_dir(dir.path());
    let media = SoundRef::from_media_id("greeting", Some("acct"));
    assert!(matches!(
        library.resolve(&media).await,
        Err(AudioError::NotFound(_))
    ));
    let path = media_files::audio_path(dir.path(), Some("acct"), "greeting").unwrap();
    media_files::write_atomically(&path, &wav_bytes(16_000, 1.0)).unwrap();
    assert_eq!(library.resolve(&media).await.unwrap().len(), 8000);
    media_files::write_atomically(&path, &wav_bytes(8000, 2.0)).unwrap();
    assert_eq!(library.resolve(&media).await.unwrap().len(), 16_000);
    library.forget_media(Some("acct"), "greeting");

    let system = media_files::audio_path(dir.path(), None, "beep").unwrap();
    media_files::write_atomically(&system, &wav_bytes(8000, 0.5)).unwrap();
    let beep = SoundRef::from_media_id("/system_media/beep", Some("acct"));
    assert_eq!(library.resolve(&beep).await.unwrap().len(), 4000);
    let escape = SoundRef::from_media_id("/acct/../../etc", None);
    assert!(library.resolve(&escape).await.is_err());
}

#[tokio::test]
async fn tones_speech_say_and_urls() {
    let library = SoundLibrary::new(LibraryConfig::default());
    let tone = SoundRef::Tone("tone_stream://%(500,0,1000)".into());
    assert_eq!(library.resolve(&tone).await.unwrap().len(), 4000);
    assert!(matches!(
        library
            .resolve(&SoundRef::Tone("tone_stream://nope".into()))
            .await,
        Err(AudioError::BadTone(_))
    ));
    let url = SoundRef::Url("https://example.com/a.mp3".into());
    assert!(matches!(
        library.resolve(&url).await,
        Err(AudioError::Unsupported(_))
    ));
    let say = SoundRef::Say(SayRequest {
        text: "12.50".into(),
        kind: "currency".into(),
        method: "pronounced".into(),
        language: None,
        gender: Some("feminine".into()),
    });
    let spoken = library.resolve(&say).await.unwrap();
    assert!(spoken.duration().as_secs_f32() > 1.0, "{spoken:?}");
    assert_eq!(library.resolve(&say).await.unwrap(), spoken, "cached");
    assert_eq!(library.inner.speech.usage().0, 1);
}

#[tokio::test]
async fn speech_on_disk_is_used_and_written() {
    let dir = tempfile::tempdir().unwrap();
    let request = TtsRequest {
        text: "Welcome back".into(),
        voice: "female".into(),
        language: None,
        engine: "flite".into(),
    };
    // A clip no engine would render: the library must take it from the disk.
    let planted = Clip::new(vec![1234; 800]);
    SpeechDisk::new(dir.path(), 10, 1 << 20).put(&request, &planted);
    let library = SoundLibrary::with_data_dir(dir.path());
    let sound = SoundRef::Tts(request.clone());
    assert_eq!(library.resolve(&sound).await.unwrap(), planted);

    let other = SoundRef::Tts(TtsRequest {
        text: "Goodbye".into(),
        ..request
    });
    let spoken = library.resolve(&other).await.unwrap();
    let cache = dir.path().join(crate::audio::speech_disk::TTS_CACHE_DIR);
    for _ in 0..100 {
        if std::fs::read_dir(&cache).unwrap().count() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let fresh = SoundLibrary::with_data_dir(dir.path());
    assert_eq!(
        fresh.resolve(&other).await.unwrap(),
        spoken,
        "kept across a restart"
    );
}

#[tokio::test]
async fn concurrent_asks_for_the_same_speech_share_one_rendering() {
    let library = SoundLibrary::new(LibraryConfig::default());
    let sound = SoundRef::Tts(TtsRequest {
        text: "Please hold".into(),
        voice: "male".into(),
        language: None,
        engine: "flite".into(),
    });
    let asks: Vec<_> = (0..6)
        .map(|_| {
            let (library, sound) = (library.clone(), sound.clone());
            tokio::spawn(async move { library.resolve(&sound).await })
        })
        .collect();
    let mut clips = Vec::new();
    for ask in asks {
        clips.push(ask.await.unwrap().unwrap());
    }
    assert!(clips.windows(2).all(|pair| pair[0] == pair[1]));
    assert!(library.inner.pending.lock().unwrap().is_empty());
}
