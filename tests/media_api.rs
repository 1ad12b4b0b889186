//! Kazoo's media API: documents created, uploaded (a generated WAV, decoded before it is kept),
//! downloaded, listed, replaced and deleted; bad uploads, unknown ids and other accounts refused;
//! and the sound library playing what the API stored.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod api_support;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use metaflow_proxy::audio::{SoundLibrary, SoundRef};
use serde_json::json;
use tower::ServiceExt;

use api_support::{Api, TOKEN, api, assert_error, assert_success};

const MEDIA: &str = "/v2/accounts/default/media";

/// A mono 16-bit WAV of a 440 Hz tone.
fn wav(rate: u32, seconds: f32) -> Vec<u8> {
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
            .write_sample((9000.0 * (std::f32::consts::TAU * 440.0 * t).sin()) as i16)
            .unwrap();
    }
    writer.finalize().unwrap();
    out.into_inner()
}

/// Sends `body` with `content_type`; answers the status, content type and raw body.
async fn send_bytes(
    api: &Api,
    method: &str,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (StatusCode, String, Vec<u8>) {
    let request = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).unwrap())
        .uri(path)
        .header("X-Auth-Token", TOKEN)
        .header("Content-Type", content_type)
        .body(Body::from(body))
        .unwrap();
    let response = api.router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let kind = response
        .headers()
        .get("content-type")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, kind, bytes.to_vec())
}

#[tokio::test]
async fn create_upload_download_list_replace_delete() {
    let api = api();
    let id = api
        .create(
            MEDIA,
            json!({"name": "Welcome", "description": "the greeting"}),
        )
        .await;
    assert_eq!(id.len(), 32);
    let path = format!("{MEDIA}/{id}");
    let fetched = api.call("GET", &path, None).await;
    assert_success(&fetched, StatusCode::OK);
    assert_eq!(fetched.data()["media_source"], "upload", "Kazoo's default");
    assert_eq!(fetched.data()["name"], "Welcome");

    // No audio yet.
    let raw = format!("{path}/raw");
    let (status, _, _) = send_bytes(&api, "GET", &raw, "", Vec::new()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let audio = wav(16_000, 1.5);
    let (status, _, body) = send_bytes(&api, "POST", &raw, "audio/wav", audio.clone()).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let uploaded: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(uploaded["data"]["content_type"], "audio/wav");
    assert_eq!(uploaded["data"]["content_length"], audio.len());
    assert_eq!(uploaded["data"]["duration_ms"], 1500);

    let (status, kind, body) = send_bytes(&api, "GET", &raw, "", Vec::new()).await;
    assert_eq!((status, kind.as_str()), (StatusCode::OK, "audio/wav"));
    assert_eq!(body, audio, "the file comes back as it was sent");
    // Kazoo's other spellings: GET of the document with an audio Accept, POST with audio.
    let request = Request::builder()
        .uri(&path)
        .header("X-Auth-Token", TOKEN)
        .header("Accept", "audio/*")
        .body(Body::empty())
        .unwrap();
    let response = api.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let same = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    assert_eq!(same.to_vec(), audio);
    let (status, _, _) = send_bytes(&api, "POST", &path, "audio/x-wav", audio.clone()).await;
    assert_eq!(status, StatusCode::OK);

    // The library plays what the API stored, resampled to 8 kHz.
    let library = SoundLibrary::with_data_dir(api.dir.path());
    let clip = library
        .resolve(&SoundRef::from_media_id(&id, Some("default")))
        .await
        .unwrap();
    assert_eq!(clip.len(), 12_000);

    let second = api.create(MEDIA, json!({"name": "Another"})).await;
    let listed = api.call("GET", MEDIA, None).await;
    assert_success(&listed, StatusCode::OK);
    let names: Vec<&str> = listed
        .data()
        .as_array()
        .unwrap()
        .iter()
        .map(|doc| doc["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Another", "Welcome"]);

    let replaced = api
        .call(
            "POST",
            &path,
            Some(r#"{"data":{"name":"Hello","content_length":1}}"#),
        )
        .await;
    assert_success(&replaced, StatusCode::OK);
    assert_eq!(replaced.data()["name"], "Hello");
    assert!(
        replaced.data().get("description").is_none(),
        "POST replaces"
    );
    assert_eq!(
        replaced.data()["content_length"],
        audio.len(),
        "the upload's fields stay"
    );

    assert_success(&api.call("DELETE", &path, None).await, StatusCode::OK);
    assert_error(&api.call("GET", &path, None).await, StatusCode::NOT_FOUND);
    let (status, _, _) = send_bytes(&api, "GET", &raw, "", Vec::new()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        library
            .resolve(&SoundRef::from_media_id(&id, Some("default")))
            .await
            .is_err()
    );
    assert_eq!(
        api.call("GET", MEDIA, None).await.data()[0]["id"],
        second.as_str()
    );
}

#[tokio::test]
async fn bad_documents_and_uploads_are_refused() {
    let api = api();
    let bad = api
        .call(
            "PUT",
            MEDIA,
            Some(r#"{"data":{"media_source":"radio","streamable":"yes"}}"#),
        )
        .await;
    let fields = assert_error(&bad, StatusCode::BAD_REQUEST);
    assert!(fields["name"]["required"].is_object(), "{fields}");
    assert!(fields["media_source"]["enum"].is_object(), "{fields}");
    assert!(fields["streamable"]["type"].is_object(), "{fields}");
    let tts = api
        .call(
            "PUT",
            MEDIA,
            Some(r#"{"data":{"name":"x","media_source":"tts"}}"#),
        )
        .await;
    assert!(assert_error(&tts, StatusCode::BAD_REQUEST)["tts.text"]["required"].is_object());

    let id = api.create(MEDIA, json!({"name": "Broken"})).await;
    let raw = format!("{MEDIA}/{id}/raw");
    let (status, _, body) = send_bytes(
        &api,
        "POST",
        &raw,
        "audio/wav",
        b"RIFF0000WAVEnot really".to_vec(),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let (status, _, _) = send_bytes(&api, "POST", &raw, "text/plain", wav(8000, 0.2)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, body) =
        send_bytes(&api, "POST", &raw, "audio/wav", vec![0; 21 * 1024 * 1024]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let envelope: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(envelope["error"], "413");
    let (status, _, _) = send_bytes(&api, "GET", &raw, "", Vec::new()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was stored");
}

#[tokio::test]
async fn unknown_ids_and_other_accounts_are_refused() {
    let api = api();
    let id = api.create(MEDIA, json!({"name": "Mine"})).await;
    assert_error(
        &api.call("GET", &format!("{MEDIA}/0123456789abcdef"), None)
            .await,
        StatusCode::NOT_FOUND,
    );
    assert_error(
        &api.call("GET", &format!("{MEDIA}/..%2F..%2Fstore"), None)
            .await,
        StatusCode::NOT_FOUND,
    );
    assert_error(
        &api.call("GET", "/v2/accounts/nobody/media", None).await,
        StatusCode::NOT_FOUND,
    );
    let acme = api
        .create(
            "/v2/accounts",
            json!({"name": "Acme", "realm": "acme.example"}),
        )
        .await;
    let theirs = format!("/v2/accounts/{acme}/media/{id}");
    assert_error(&api.call("GET", &theirs, None).await, StatusCode::NOT_FOUND);
    assert_error(
        &api.call("DELETE", &theirs, None).await,
        StatusCode::NOT_FOUND,
    );
    let (status, _, _) = send_bytes(
        &api,
        "POST",
        &format!("{theirs}/raw"),
        "audio/wav",
        wav(8000, 0.2),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let listed = api
        .call("GET", &format!("/v2/accounts/{acme}/media"), None)
        .await;
    assert_eq!(listed.data(), &json!([]));
    assert_success(
        &api.call("GET", &format!("{MEDIA}/{id}"), None).await,
        StatusCode::OK,
    );
}

#[tokio::test]
async fn mp3_uploads_and_tts_media_play() {
    let api = api();
    let id = api.create(MEDIA, json!({"name": "Music"})).await;
    let mp3 = include_bytes!("data/audio/tone-1khz-44k1-1s.mp3").to_vec();
    let raw = format!("{MEDIA}/{id}/raw");
    let (status, _, body) = send_bytes(&api, "POST", &raw, "audio/mpeg", mp3.clone()).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let (status, kind, body) = send_bytes(&api, "GET", &raw, "", Vec::new()).await;
    assert_eq!(
        (status, kind.as_str(), body),
        (StatusCode::OK, "audio/mpeg", mp3)
    );

    let library = SoundLibrary::with_data_dir(api.dir.path());
    let music = library
        .resolve(&SoundRef::from_media_id(&format!("/default/{id}"), None))
        .await
        .unwrap();
    assert!(music.duration().as_secs_f32() >= 1.0);

    let spoken = api
        .create(
            MEDIA,
            json!({"name": "Hours", "media_source": "tts",
                   "tts": {"text": "We are open nine to five.", "voice": "female/en-US"}}),
        )
        .await;
    let clip = library
        .resolve(&SoundRef::from_media_id(&spoken, Some("default")))
        .await
        .unwrap();
    assert!(clip.duration().as_secs_f32() > 1.0, "{clip:?}");
}
