//! Faces blurred on export, with a face *detector* only: `aperture get --blur-faces` and
//! `?blur=faces`, on real portraits; nothing about a face is stored.

use crate::real_media::{env_dir, with_models};
use crate::search::asset_id;
use crate::server::Server;
use crate::{Aperture, files_under};

/// Pixels (of the same image size) that differ by more than a little in any channel.
fn changed(a: &image::RgbImage, b: &image::RgbImage, rows: std::ops::Range<u32>) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let mut n = 0u64;
    let mut total = 0u64;
    for y in rows {
        for x in 0..a.width() {
            total += 1;
            let (p, q) = (a.get_pixel(x, y).0, b.get_pixel(x, y).0);
            if p.iter().zip(q).any(|(u, v)| u.abs_diff(v) > 8) {
                n += 1;
            }
        }
    }
    n as f64 / total as f64
}

fn blurred(ap: &Aperture, id: &str) -> (image::RgbImage, String) {
    let out = ap.run(&["get", id, "--blur-faces", "-o", "-"]);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{said}");
    (
        image::load_from_memory(&out.stdout).unwrap().to_rgb8(),
        said,
    )
}

#[test]
fn faces_are_blurred_on_export_and_nothing_about_them_is_kept() {
    let ap = with_models();
    let photos = env_dir("APERTURE_TEST_SAMPLES").join("photos/skimage");
    let dir = ap.inputs();
    for name in ["astronaut.png", "camera.png", "coffee.png", "chelsea.png"] {
        std::fs::copy(photos.join(name), dir.join(name)).unwrap();
    }
    ap.ingest(&dir, "default");

    // The astronaut's portrait: her face is unrecognisable, the rest of the photo untouched.
    let original = image::open(dir.join("astronaut.png")).unwrap().to_rgb8();
    let (astronaut, said) = blurred(&ap, &asset_id(&ap, "astronaut.png"));
    assert!(said.contains("1 faces blurred"), "{said}");
    let face = changed(&original, &astronaut, 60..180);
    let suit = changed(&original, &astronaut, 300..512);
    eprintln!(
        "astronaut: {:.0}% of the face rows changed, {:.1}% of the suit's",
        face * 100.0,
        suit * 100.0
    );
    assert!(face > 0.15, "the face rows barely changed: {face}");
    assert_eq!(suit, 0.0, "pixels away from the face changed");
    // What is left is no face to the detector either.
    let again = ap.dir.path().join("astronaut-blurred.png");
    astronaut.save(&again).unwrap();
    ap.ingest(&again, "blurred");
    let (_, said) = blurred(&ap, &asset_id(&ap, "astronaut-blurred.png"));
    assert!(said.contains(" 0 faces blurred"), "{said}");
    // The cameraman too.
    let (_, said) = blurred(&ap, &asset_id(&ap, "camera.png"));
    assert!(said.contains("1 faces blurred"), "{said}");
    // A cup of coffee and a cat have no face to blur, and come back as they were.
    for name in ["coffee.png", "chelsea.png"] {
        let (copy, said) = blurred(&ap, &asset_id(&ap, name));
        assert!(said.contains(" 0 faces blurred"), "{name}: {said}");
        let original = image::open(dir.join(name)).unwrap().to_rgb8();
        assert_eq!(
            changed(&original, &copy, 0..original.height()),
            0.0,
            "{name}"
        );
    }
    // Only images.
    let video = ap.dir.path().join("clip.txt");
    std::fs::write(&video, "not an image").unwrap();
    ap.ingest(&video, "default");
    let out = ap.run(&["get", &asset_id(&ap, "clip.txt"), "--blur-faces", "-o", "-"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("images only"));

    // Over HTTP: `?blur=faces`, audited as a read of the original.
    let token = ap.json(&["token", "create", "--name", "press", "--scopes", "read"])["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let server = Server::start(&ap, &token);
    let id = asset_id(&ap, "astronaut.png");
    let (status, body) = server.call(
        "GET",
        &format!("/api/v1/assets/{id}/original?blur=faces"),
        Some(&token),
    );
    assert_eq!(status, 200);
    let over_http = image::load_from_memory(&body).unwrap().to_rgb8();
    assert_eq!(over_http, astronaut, "the same blur through the API");
    let (status, _) = server.call(
        "GET",
        &format!("/api/v1/assets/{id}/original?blur=eyes"),
        Some(&token),
    );
    assert_eq!(status, 400);
    drop(server);
    let log = ap.json(&["audit", "-n", "1000"]);
    let blurs = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["action"] == "read_original" && e["detail"].as_str().unwrap().contains("faces")
        })
        .count();
    assert_eq!(blurs, 7, "{log}");

    // Nothing about a face is stored: a blur adds no object, and no insight names faces.
    let stored_before = files_under(&ap.data().join("blobs"));
    blurred(&ap, &id);
    assert_eq!(files_under(&ap.data().join("blobs")), stored_before);
    let detail = ap.json(&["show", &id]);
    assert!(
        !detail.to_string().to_lowercase().contains("face"),
        "{detail}"
    );
}
