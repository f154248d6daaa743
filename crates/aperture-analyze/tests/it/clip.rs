//! The CLIP plumbing on a tiny CLIP with random weights that the test builds (no registry
//! carries CLIP weights; users pull them from the hub): loading the hub layout, image and
//! text embeddings in one space, the analyzer's insight.

use aperture_analyze::clip::{Clip, ClipEncoder, testing::write_tiny_clip};
use aperture_analyze::{Analyzer, Input};
use aperture_core::{MediaKind, decode_vector};
use image::{DynamicImage, ImageFormat};

use crate::{asset, encode, scene};

/// The tiny model in a folder laid out as `aperture models pull` leaves one.
fn tiny_model() -> (tempfile::TempDir, usize) {
    let dir = tempfile::tempdir().unwrap();
    let dims = write_tiny_clip(dir.path());
    let files: Vec<serde_json::Value> = ["config.json", "model.safetensors", "tokenizer.json"]
        .iter()
        .map(|name| {
            let bytes = std::fs::read(dir.path().join(name)).unwrap();
            serde_json::json!({
                "name": name,
                "sha256": sha256_hex(&bytes),
                "size": bytes.len(),
            })
        })
        .collect();
    let record = serde_json::json!({
        "format_version": 1, "name": "test/tiny-clip", "format": "safetensors",
        "licence": "test", "sources": [], "files": files,
    });
    std::fs::write(dir.path().join("installed.json"), record.to_string()).unwrap();
    (dir, dims)
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn unit(v: &[f32]) -> bool {
    (v.iter().map(|x| x * x).sum::<f32>().sqrt() - 1.0).abs() < 1e-4
}

#[test]
fn clip_embeds_images_and_texts_into_one_space() {
    let (dir, dims) = tiny_model();
    let encoder = ClipEncoder::load(dir.path()).unwrap();
    let images: Vec<DynamicImage> = [1, 2, 1]
        .iter()
        .map(|&seed| DynamicImage::ImageRgb8(scene(120, 80, seed)))
        .collect();
    let vectors = encoder.embed_images(&images).unwrap();
    assert_eq!(vectors.len(), 3);
    assert!(vectors.iter().all(|v| v.len() == dims && unit(v)));
    assert_eq!(vectors[0], vectors[2], "the same image, the same vector");
    assert_ne!(vectors[0], vectors[1]);

    let texts = encoder
        .embed_texts(&["a photo of a cat", "a red car", &"dog ".repeat(100), ""])
        .unwrap();
    assert_eq!(texts.len(), 4);
    assert!(
        texts.iter().all(|v| v.len() == dims && unit(v)),
        "{texts:?}"
    );
    assert_ne!(texts[0], texts[1]);
}

#[test]
fn the_clip_analyzer_stores_an_image_embedding_in_its_space() {
    let (dir, dims) = tiny_model();
    let clip = Clip::from_folder(dir.path().to_path_buf(), "test/tiny-clip").unwrap();
    assert_eq!(clip.space(), "clip:test/tiny-clip");
    let files = tempfile::tempdir().unwrap();
    let path = files.path().join("photo.png");
    std::fs::write(&path, encode(&scene(64, 48, 5), ImageFormat::Png)).unwrap();
    let asset = asset("photo.png", MediaKind::Image, None);
    let out = clip
        .analyze(&Input {
            asset: &asset,
            path: &path,
            insights: &[],
            frames: &[],
            suppress_plates: true,
        })
        .unwrap();
    let insight = &out.insights[0];
    assert_eq!(insight.kind(), "clip_embedding");
    assert_eq!(insight.model.as_deref(), Some("test/tiny-clip"));
    assert_eq!(
        insight.value.to_json_value()["space"],
        "clip:test/tiny-clip"
    );
    let v = decode_vector(insight.value.to_json_value()["vector"].as_str().unwrap()).unwrap();
    assert_eq!(v.len(), dims);
    assert!(unit(&v));

    // Without the model files: a clear error naming the folder, not a crash.
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    let broken = Clip::from_folder(dir.path().to_path_buf(), "test/tiny-clip").unwrap();
    let err = broken
        .analyze(&Input {
            asset: &asset,
            path: &path,
            insights: &[],
            frames: &[],
            suppress_plates: true,
        })
        .unwrap_err();
    assert!(err.to_string().contains("model.safetensors"), "{err}");
}
